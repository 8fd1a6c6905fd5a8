"""``omnissl`` CLI with a traced lazy speech dataset and an optional SIGKILL, for the sharding and resume tests.

``test.traced_folder`` is ``speech.folder`` whose ``batch`` also appends one line per batch to
``$TRACE_DIR/<pid>.txt``: ``rank worker n utterance ids`` (``worker`` is the DataLoader worker id, ``-1`` in the main process (building, monitors), ``n`` the
count of batches that worker made). The DataLoader hands index batches to its workers in turn and returns
them in order, so batch ``n`` of worker ``w`` is the loop's batch ``n * workers + w``: the test can tell the
batches the loop consumed from those workers prepared ahead. ``KILL_AT``: SIGKILL this process after that
optimizer step (0: never), the way a preempted node dies.
"""

import os
import signal
import sys
from pathlib import Path

import torch
from torch.optim.optimizer import register_optimizer_step_post_hook

from omnissl import hookimpl
from omnissl.cli import main
from omnissl.plugins import get_plugin_manager
from omnissl.specs import DatasetSpec
from omnissl_speech import datasets

KILL_AT = int(os.environ.get("KILL_AT", "0"))


class Traced:
    def __init__(self, source):
        self.source, self.made, self.pid = source, 0, os.getpid()

    def __getattr__(self, name):
        if name == "source":
            raise AttributeError(name)
        return getattr(self.source, name)

    def __len__(self):
        return len(self.source)

    def batch(self, indices):
        if self.pid != os.getpid():  # a worker counts its own batches from 0, whatever its parent made before the fork
            self.made, self.pid = 0, os.getpid()
        out = self.source.batch(indices)
        info = torch.utils.data.get_worker_info()
        ids = self.source.pretrain_index[indices.cpu()].tolist()
        with open(Path(os.environ["TRACE_DIR"]) / f"{os.getpid()}.txt", "a") as fh:
            fh.write(f"{os.environ.get('RANK', '0')} {info.id if info else -1} {self.made} {' '.join(map(str, ids))}\n")
        self.made += 1
        return out

    def to(self, device):
        self.source.to(device)
        return self


def _kill_after(optimizer, args, kwargs, count=[0]):
    count[0] += 1
    if count[0] == KILL_AT:
        os.kill(os.getpid(), signal.SIGKILL)


class Plugin:
    @hookimpl
    def omnissl_datasets(self):
        yield DatasetSpec(name="test.traced_folder", modality="speech", config=datasets.FolderConfig,
                          factory=lambda cfg, ctx: Traced(datasets.folder_source(cfg, ctx)), summary="speech.folder, tracing its batches")


if __name__ == "__main__":
    if KILL_AT:
        register_optimizer_step_post_hook(_kill_after)
    get_plugin_manager().register(Plugin(), name="tracer")
    sys.exit(main(sys.argv[1:]))
