"""`vae-audio train ...` that freezes once a given optimiser step's checkpoint is on disk.

Usage: ``python _freezing_train.py STEP MARKER train RECIPE --config ...``. Before step
``STEP + 1`` starts (so after the checkpoints of step ``STEP`` were written) the process
writes ``MARKER`` and sleeps, for the test to kill it with SIGKILL at a known point.
"""

import sys
import time
from pathlib import Path

import lightning
import torch
from lightning.pytorch.callbacks import Callback

torch.set_num_threads(1)
STOP, MARKER = int(sys.argv[1]), Path(sys.argv[2])


class _Freeze(Callback):
    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if trainer.global_step == STOP:
            MARKER.write_text(str(STOP))
            time.sleep(600)


_init = lightning.Trainer.__init__


def _with_freeze(self, *args, callbacks=(), **kwargs):
    _init(self, *args, callbacks=[*callbacks, _Freeze()], **kwargs)


lightning.Trainer.__init__ = _with_freeze

from vae_audio.cli import main  # noqa: E402

sys.exit(main(sys.argv[3:]))
