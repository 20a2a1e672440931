"""Run by tests/test_train.py under `torchrun --nproc_per_node=2`: train 2 steps with gloo
and save each rank's weights, so the test can check that the ranks stay in sync."""

import sys

import torch

from vdm_lite.config import get_preset
from vdm_lite.overrides import apply_overrides
from vdm_lite.train import Trainer

out = sys.argv[1]
cfg = apply_overrides(get_preset("cpu-smoke"), sys.argv[2:])
trainer = Trainer(cfg, run_dir=out)
init = {k: v.clone() for k, v in trainer.model.state_dict().items()}
trainer.train(progress=False)
torch.save({"init": init, "final": trainer.model.state_dict(), "ema": trainer.ema.state_dict(), "step": trainer.step},
           f"{out}/rank{trainer.dist.rank}.pt")
torch.distributed.destroy_process_group()
