"""Violation: appends each request's X-Device-Id and X-Forwarded-For to ./app.log.

Finding kind: log-leak (policy 1, 2d, 4b: client identifiers and addresses never reach a log, and a
log file is still a log). The personal canaries are what it leaks, not the image."""

import os
import sys

sys.dont_write_bytecode = True  # importing `common` must not write __pycache__ files
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import time  # noqa: E402

from common.pipeline import Pipeline, main  # noqa: E402


class LogFileHeaders(Pipeline):
    name = "log_file_headers"

    def on_upload(self, upload):
        device = upload.headers.get("X-Device-Id", "-")
        client = upload.headers.get("X-Forwarded-For", "-")
        with open("app.log", "a", encoding="utf-8") as log:
            log.write(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} request={upload.request_id} device={device} client={client}\n")


if __name__ == "__main__":
    main(LogFileHeaders)
