"""vdm_lite: Video Diffusion Models (Ho et al., NeurIPS 2022), small enough to read.

Modules follow the paper:

* :mod:`vdm_lite.conventions` -- shared conventions: the null condition, parameterizations, video shape
* :mod:`vdm_lite.schedule`  -- log-SNR noise schedules (Section 2)
* :mod:`vdm_lite.diffusion` -- forward process, posterior, parameterizations, losses (eq. 1-3)
* :mod:`vdm_lite.samplers`  -- ancestral, predictor-corrector, DDIM, classifier-free guidance (eq. 4-6)
* :mod:`vdm_lite.toy`       -- analytic denoisers of toy distributions with known answers
* :mod:`vdm_lite.nn`        -- the factorized space-time 3D U-Net (Section 3, Figure 1)
* :mod:`vdm_lite.datasets`  -- the built-in bouncing-shapes world, digits, video files, joint batches
* :mod:`vdm_lite.viz`       -- inline videos, GIF/MP4 files, frame grids
* :mod:`vdm_lite.train`, :mod:`vdm_lite.config`, :mod:`vdm_lite.sampling` -- training and sampling runs
"""

__version__ = "0.1.0"

from . import conventions, datasets, diffusion, nn, samplers, schedule, toy, utils, viz  # noqa: E402,F401
from .utils import fast_mode, pick  # noqa: E402,F401
