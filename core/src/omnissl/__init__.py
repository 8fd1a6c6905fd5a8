"""omnissl: self-supervised pretraining for every modality on one engine.

The public surface a plugin author needs: the three interfaces, the spec records and ``hookimpl``.
Names that need torch (the interfaces, the plugin manager, which loads every plugin) are imported on
first use (PEP 562), so that ``omnissl --help``, config validation and the pytest fixtures start fast.
"""

from importlib import import_module

from omnissl.hookspecs import hookimpl
from omnissl.specs import (
    BuildContext,
    CallbackSpec,
    ComponentConfig,
    DatasetSpec,
    EncoderSpec,
    EvaluatorSpec,
    ModalitySpec,
    NoConfig,
    ObjectiveSpec,
    ViewGeneratorSpec,
)

__version__ = "0.1.0"

_LAZY = {
    **dict.fromkeys(("DataSource", "Encoded", "Encoder", "Objective", "ObjectiveOutput", "Progress", "ViewGenerator", "Views"), "omnissl.interfaces"),
    **dict.fromkeys(("PluginManager", "get_plugin_manager"), "omnissl.plugins"),
}


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'omnissl' has no attribute {name!r}")


__all__ = [
    "BuildContext", "CallbackSpec", "ComponentConfig", "DataSource", "DatasetSpec", "Encoded", "Encoder",
    "EncoderSpec", "EvaluatorSpec", "ModalitySpec", "NoConfig", "Objective", "ObjectiveOutput", "ObjectiveSpec",
    "PluginManager", "Progress", "ViewGenerator", "ViewGeneratorSpec", "Views", "get_plugin_manager", "hookimpl",
]
