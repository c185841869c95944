"""Violation, written late: keeps every upload and, after its twelfth answer, writes them all to
`backlog.bin` in its working directory. By then the first requests were judged long ago, and with
`[audit] live_requests = 2` their needles were retired from the live index: only the end-of-run
sweep with every needle can name request 1 in that file."""

import os
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "faulty"))

import threading  # noqa: E402

from common.pipeline import Pipeline, main  # noqa: E402


class WriteBehind(Pipeline):
    name = "write_behind"

    def __init__(self, settings):
        super().__init__(settings)
        self._kept = []
        self._lock = threading.Lock()

    def on_upload(self, upload):
        with self._lock:
            self._kept.append(bytes(upload.image))

    def after_response(self, upload):
        with self._lock:
            if len(self._kept) == 12:
                with open("backlog.bin", "wb") as f:
                    for image in self._kept:
                        f.write(image)


if __name__ == "__main__":
    main(WriteBehind)
