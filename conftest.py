"""Test-suite settings: the fast switch is on unless the caller sets it.

Notebook kernels started by nbval inherit this environment, so `pytest` alone runs every
notebook in its small, fast mode (`VDM_LITE_FAST=0 pytest notebooks` runs them in full).
"""

import os

os.environ.setdefault("VDM_LITE_FAST", "1")
os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("TQDM_DISABLE", "1")
