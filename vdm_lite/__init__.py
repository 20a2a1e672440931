"""vdm_lite: Video Diffusion Models (Ho et al., NeurIPS 2022), small enough to read.

Modules follow the paper:

* :mod:`vdm_lite.schedule`  -- log-SNR noise schedules (Section 2)
* :mod:`vdm_lite.diffusion` -- forward process, posterior, parameterizations, losses (eq. 1-3)
* :mod:`vdm_lite.samplers`  -- ancestral, predictor-corrector, DDIM, classifier-free guidance (eq. 4-6)
* :mod:`vdm_lite.toy`       -- analytic denoisers of toy distributions with known answers
"""

__version__ = "0.1.0"

from . import diffusion, samplers, schedule, toy, utils  # noqa: E402,F401
from .utils import fast_mode, pick  # noqa: E402,F401
