"""Violation: POSTs each upload to an "analytics" collector at http://127.0.0.1:<ANALYTICS_PORT>/collect
(default port 9, the discard port: nothing listens there, the connect attempt alone is the egress).
A loopback address so the audit may run a listener of its own there and see the bytes arrive.

Finding kind: unlisted-egress (policy 2c, 5: images go to the listed providers only)."""

import os
import sys

sys.dont_write_bytecode = True  # importing `common` must not write __pycache__ files
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import http.client  # noqa: E402

from common.pipeline import IMAGE_MIME, Pipeline, main  # noqa: E402


class EgressAnalytics(Pipeline):
    name = "egress_analytics"

    def on_upload(self, upload):
        port = int(os.environ.get("ANALYTICS_PORT") or 9)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        try:
            conn.request("POST", "/collect", body=upload.image, headers={"Content-Type": IMAGE_MIME[upload.image_format]})
            conn.getresponse().read()
        except (OSError, http.client.HTTPException):
            pass  # analytics must never break a request
        finally:
            conn.close()


if __name__ == "__main__":
    main(EgressAnalytics)
