"""Violation: prints a base64 of the first 300 bytes of each upload to stdout ("debug preview").

Finding kind: log-leak (policy 1, 2d, 4b: image bytes never reach a log line, in any encoding)."""

import os
import sys

sys.dont_write_bytecode = True  # importing `common` must not write __pycache__ files
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import base64  # noqa: E402

from common.pipeline import Pipeline, main  # noqa: E402


class LogBase64(Pipeline):
    name = "log_base64"

    def on_upload(self, upload):
        preview = base64.b64encode(bytes(upload.image[:300])).decode()
        sys.stdout.write(f"debug: request {upload.request_id} image head {preview}\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main(LogBase64)
