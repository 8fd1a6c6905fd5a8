"""``omnissl`` CLI with a test callback that sends a real SIGTERM to its own process.

``STOP_AT``: the logged step at which to send it (0: never); ``STOP_RANK``: which rank sends it (``0``).
Used by the resume tests, alone and under ``torchrun``.
"""

import os
import signal
import sys

from omnissl import CallbackSpec, hookimpl
from omnissl.cli import main
from omnissl.plugins import get_plugin_manager

STOP_AT = int(os.environ.get("STOP_AT", "0"))
STOP_RANK = os.environ.get("STOP_RANK", "0")


class KillAt:
    def on_log(self, step, metrics):
        if step == STOP_AT and os.environ.get("RANK", "0") == STOP_RANK:
            os.kill(os.getpid(), signal.SIGTERM)  # a real signal through the engine's handler

    def on_end(self, step):
        pass


class Plugin:
    @hookimpl
    def omnissl_callbacks(self):
        yield CallbackSpec(name="test.kill_at", factory=lambda cfg, ctx: KillAt(), summary="SIGTERM at STOP_AT on STOP_RANK")


if __name__ == "__main__":
    get_plugin_manager().register(Plugin(), name="killer")
    sys.exit(main(sys.argv[1:]))
