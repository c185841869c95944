"""Violation: ignores `age_confirmed`: requests without age confirmation are processed and sent.

Finding kind: child-data (policy 7: nothing is processed for a user who did not confirm being 13+)."""

import os
import sys

sys.dont_write_bytecode = True  # importing `common` must not write __pycache__ files
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common.pipeline import Pipeline, main  # noqa: E402


class NoAgeGate(Pipeline):
    name = "no_age_gate"

    def age_gate(self, form):
        return True


if __name__ == "__main__":
    main(NoAgeGate)
