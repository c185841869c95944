"""The control: the clean pipeline, no violation. The audit must report no finding (kinds = [])."""

import os
import sys

sys.dont_write_bytecode = True  # importing `common` must not write __pycache__ files
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common.pipeline import Pipeline, main  # noqa: E402


class Clean(Pipeline):
    name = "clean"


if __name__ == "__main__":
    main(Clean)
