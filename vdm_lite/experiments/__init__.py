"""Experiments built on the teaching core: the paper's tables reproduced (``vdm-lite reproduce``).

Each writes a JSON result and a markdown table made from it; the committed results are in
``benchmarks/results/``.

* :mod:`~vdm_lite.experiments.table4`     -- Table 4 at small scale: joint image-video training
  (:func:`reproduce_joint_training`)
* :mod:`~vdm_lite.experiments.table5`     -- Table 5 at small scale: classifier-free guidance
  weights (:func:`reproduce_guidance`)
* :mod:`~vdm_lite.experiments.table6`     -- Table 6 / Figure 4 at small scale: replacement vs
  reconstruction guidance (:func:`reproduce_extension`)
* :mod:`~vdm_lite.experiments.scoring`    -- the ShapesNet scores Tables 4 and 5 add to
  :func:`vdm_lite.evaluate.score_videos`
* :mod:`~vdm_lite.experiments.protocols`  -- the paper's protocols of Tables 1-3 (UCF101, BAIR,
  Kinetics-600): counts, data, feature networks
* :mod:`~vdm_lite.experiments.tables1to3` -- their driver: sharded, resumable sampling, scores,
  tables (:func:`reproduce_benchmark`)
* :mod:`~vdm_lite.experiments.report`     -- markdown and JSON writers, paired statistics, plots;
  ``python -m vdm_lite.experiments.report`` makes every table again from its JSON

Import from the modules (``from vdm_lite.experiments.table6 import reproduce_extension``): this
package imports none of them, so that ``python -m vdm_lite.experiments.report`` runs cleanly.
"""
