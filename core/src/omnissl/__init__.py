"""omnissl: self-supervised pretraining for every modality on one engine.

The public surface a plugin author needs: the three interfaces, the spec records and ``hookimpl``.
"""

from omnissl.hookspecs import hookimpl
from omnissl.interfaces import DataSource, Encoded, Encoder, Objective, ObjectiveOutput, Progress, ViewGenerator, Views
from omnissl.plugins import PluginManager, get_plugin_manager
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

__all__ = [
    "BuildContext", "CallbackSpec", "ComponentConfig", "DataSource", "DatasetSpec", "Encoded", "Encoder",
    "EncoderSpec", "EvaluatorSpec", "ModalitySpec", "NoConfig", "Objective", "ObjectiveOutput", "ObjectiveSpec",
    "PluginManager", "Progress", "ViewGenerator", "ViewGeneratorSpec", "Views", "get_plugin_manager", "hookimpl",
]
