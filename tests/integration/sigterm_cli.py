"""``omnissl`` CLI with a test callback that sends a real SIGTERM to its own process.

``STOP_AT``: the optimizer step after which to send it (0: never); ``STOP_RANK``: which rank sends it
(``0``). The trigger is a global optimizer step hook, not ``on_log``: callbacks run on rank 0 only, and the
distributed test needs the signal to reach rank 1 alone. Used by the resume tests, alone and under
``torchrun``.
"""

import os
import signal
import sys

from torch.optim.optimizer import register_optimizer_step_post_hook

from omnissl import CallbackSpec, hookimpl
from omnissl.cli import main
from omnissl.plugins import get_plugin_manager

STOP_AT = int(os.environ.get("STOP_AT", "0"))
STOP_RANK = os.environ.get("STOP_RANK", "0")


class KillAt:
    """Built on every rank (components are); counts optimizer steps and signals its own process at STOP_AT."""

    def __init__(self):
        self.steps = 0
        register_optimizer_step_post_hook(self._after_step)

    def _after_step(self, optimizer, args, kwargs):
        self.steps += 1
        if self.steps == STOP_AT and os.environ.get("RANK", "0") == STOP_RANK:
            os.kill(os.getpid(), signal.SIGTERM)  # a real signal through the engine's handler

    def on_log(self, step, metrics):
        pass

    def on_end(self, step):
        pass


class Plugin:
    @hookimpl
    def omnissl_callbacks(self):
        yield CallbackSpec(name="test.kill_at", factory=lambda cfg, ctx: KillAt(), summary="SIGTERM after optimizer step STOP_AT on STOP_RANK")


if __name__ == "__main__":
    get_plugin_manager().register(Plugin(), name="killer")
    sys.exit(main(sys.argv[1:]))
