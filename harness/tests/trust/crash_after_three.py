"""Dies (exit code 70, as an unhandled fatal error would) once it has answered three generation requests: the audit must say the pipeline
died (how, during which scenario, the end of its stderr), send nothing more, and mark what it never
reached as not run. Its first three answers are clean."""

import os
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "faulty"))

import threading  # noqa: E402

from common.pipeline import Pipeline, main  # noqa: E402


class CrashAfterThree(Pipeline):
    name = "crash_after_three"

    def __init__(self, settings):
        super().__init__(settings)
        self._answered = 0
        self._lock = threading.Lock()

    def after_response(self, upload):
        with self._lock:
            self._answered += 1
            if self._answered == 3:
                sys.stderr.write("crash_after_three: giving up after three answers\n")
                sys.stderr.flush()
                os._exit(70)


if __name__ == "__main__":
    main(CrashAfterThree)
