"""``python -m vdm_lite.exercises --student SRC... OUT_DIR`` writes the student version of the
notebooks; ``--list SRC...`` lists their exercises (:func:`vdm_lite.exercises.student._main`)."""

import sys

from .student import _main

if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
