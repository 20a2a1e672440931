"""Graded exercises of the notebooks: the graders, and the student version of the notebooks.

Every notebook has exercises: a code cell with a function's signature, its shapes and equation, and
its solution between two marker lines; the next cell grades it, ``exercises.check_<name>(<name>)``,
against the library, and says which output, term or shape is off. :data:`GRADERS` maps each
exercise's name to its grader. The graders live in one module per part of the course:

* :mod:`~vdm_lite.exercises.forward_process`         -- notebook 01, eq. (1) and (3)
* :mod:`~vdm_lite.exercises.losses`                  -- notebook 02, eq. (2): conversions and weightings
* :mod:`~vdm_lite.exercises.samplers`                -- notebook 03, eq. (4)-(6)
* :mod:`~vdm_lite.exercises.unet`                    -- notebook 04, the U-Net's pieces
* :mod:`~vdm_lite.exercises.datasets`                -- notebook 05, joint image-video batches
* :mod:`~vdm_lite.exercises.training`                -- notebook 06, eq. (2) and one training step
* :mod:`~vdm_lite.exercises.joint_training`          -- notebook 07, positions and masked attention
* :mod:`~vdm_lite.exercises.guidance`                -- notebook 08, condition dropout and eq. (6)
* :mod:`~vdm_lite.exercises.reconstruction_guidance` -- notebook 09, eq. (7)
* :mod:`~vdm_lite.exercises.super_resolution`        -- notebook 10, eq. (8)
* :mod:`~vdm_lite.exercises.evaluation`              -- notebook 11, the Frechet distance

and share the helpers of :mod:`~vdm_lite.exercises._grading` (comparing an output with the
library's) and the small models of :mod:`~vdm_lite.exercises._models`.

The committed notebooks hold the solutions; a student gets the **student version**, each solution
replaced by a "your turn" error (:mod:`~vdm_lite.exercises.student`)::

    python -m vdm_lite.exercises --student notebooks/ student/   # writes student/NN_*.ipynb
    python -m vdm_lite.exercises --list notebooks/               # the exercises of each notebook"""

from __future__ import annotations

from typing import Callable

from ._grading import PASS  # noqa: F401  (the check mark that starts every pass line; tests read it)
from .datasets import check_append_images, check_draw_image_sources
from .evaluation import check_fit_gaussian, check_frechet
from .forward_process import check_posterior, check_q_sample
from .guidance import check_drop_condition, check_guided_eps
from .joint_training import check_frame_positions, check_masked_temporal_attention
from .losses import check_convert, check_x_weight
from .reconstruction_guidance import check_reconstruction_guided_x
from .samplers import (
    check_ancestral_step,
    check_classifier_free_guidance,
    check_langevin_step,
)
from .student import (  # noqa: F401
    MARKER,
    SOLUTION_END,
    SOLUTION_START,
    STUDENT_NOTE,
    _main,
    find_exercises,
    is_exercise_cell,
    is_grader_cell,
    student_notebook,
    student_source,
    write_student_version,
)
from .super_resolution import check_superres_guided_x
from .training import check_train_step, check_training_loss
from .unet import check_conv1x3x3_video, check_temporal_attention_mask

__all__ = [
    "GRADERS",
    "check_q_sample",
    "check_posterior",
    "check_convert",
    "check_x_weight",
    "check_ancestral_step",
    "check_langevin_step",
    "check_classifier_free_guidance",
    "check_temporal_attention_mask",
    "check_conv1x3x3_video",
    "check_draw_image_sources",
    "check_append_images",
    "check_training_loss",
    "check_train_step",
    "check_frame_positions",
    "check_masked_temporal_attention",
    "check_drop_condition",
    "check_guided_eps",
    "check_reconstruction_guided_x",
    "check_superres_guided_x",
    "check_fit_gaussian",
    "check_frechet",
    "student_source",
    "student_notebook",
    "find_exercises",
    "write_student_version",
]

# the grader of each exercise, by the name of the student's function
GRADERS: dict[str, Callable[[Callable], None]] = {
    "q_sample": check_q_sample,
    "posterior": check_posterior,
    "convert": check_convert,
    "x_weight": check_x_weight,
    "ancestral_step": check_ancestral_step,
    "langevin_step": check_langevin_step,
    "classifier_free_guidance": check_classifier_free_guidance,
    "temporal_attention_mask": check_temporal_attention_mask,
    "conv1x3x3_video": check_conv1x3x3_video,
    "draw_image_sources": check_draw_image_sources,
    "append_images": check_append_images,
    "training_loss": check_training_loss,
    "train_step": check_train_step,
    "frame_positions": check_frame_positions,
    "masked_temporal_attention": check_masked_temporal_attention,
    "drop_condition": check_drop_condition,
    "guided_eps": check_guided_eps,
    "reconstruction_guided_x": check_reconstruction_guided_x,
    "superres_guided_x": check_superres_guided_x,
    "fit_gaussian": check_fit_gaussian,
    "frechet": check_frechet,
}
