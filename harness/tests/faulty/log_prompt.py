"""Violation: logs the prompt to stderr.

Finding kind: log-leak (policy 1, 2d, 4b: prompts never reach a log line)."""

import os
import sys

sys.dont_write_bytecode = True  # importing `common` must not write __pycache__ files
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common.pipeline import Pipeline, main  # noqa: E402


class LogPrompt(Pipeline):
    name = "log_prompt"

    def on_upload(self, upload):
        sys.stderr.write(f"request {upload.request_id}: provider={upload.provider} prompt={upload.prompt!r}\n")
        sys.stderr.flush()


if __name__ == "__main__":
    main(LogPrompt)
