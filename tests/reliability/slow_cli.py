"""``omnissl`` CLI with a ``test.slow`` callback that sleeps ``SLOW_S`` seconds at every log, so a test can
SIGKILL the process in the middle of training."""

import os
import sys
import time

from omnissl import CallbackSpec, hookimpl
from omnissl.cli import main
from omnissl.plugins import get_plugin_manager


class Slow:
    def on_log(self, step, metrics):
        time.sleep(float(os.environ.get("SLOW_S", "0.05")))

    def on_end(self, step):
        pass


class Plugin:
    @hookimpl
    def omnissl_callbacks(self):
        yield CallbackSpec(name="test.slow", factory=lambda cfg, ctx: Slow(), summary="sleeps SLOW_S at every log")


if __name__ == "__main__":
    get_plugin_manager().register(Plugin(), name="slow")
    sys.exit(main(sys.argv[1:]))
