"""Violation: keeps each upload as ./kept/<request>-<random>.png and serves its ./assets folder at
GET /assets/..., refusing a literal `..` but decoding the path only after that check, so an encoded
traversal (/assets/%2e%2e/kept/...) reaches every kept upload. Nothing is served under /kept/.

Finding kinds: public-exposure (policy 4c, 6), found only through encoded traversal, and
disk-persistence (policy 1, 2d, 3, 4b: the upload is stored)."""

import os
import sys

sys.dont_write_bytecode = True  # importing `common` must not write __pycache__ files
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import urllib.parse  # noqa: E402

from common.pipeline import Pipeline, main  # noqa: E402


class StaticTraversal(Pipeline):
    name = "static_traversal"

    def on_upload(self, upload):
        os.makedirs("kept", exist_ok=True)
        os.makedirs("assets", exist_ok=True)
        path = os.path.join("kept", f"{upload.request_id:06d}-{os.urandom(4).hex()}.png")
        with open(path, "wb", buffering=0) as file:
            file.write(upload.image)

    def handle_get(self, handler, path):
        if not path.startswith("/assets/") or ".." in path:
            return False
        # BUG: the path is decoded after the check, so %2e%2e/ climbs out of ./assets.
        target = os.path.join("assets", urllib.parse.unquote(path[len("/assets/"):]))
        if not os.path.isfile(target):
            return False
        with open(target, "rb") as file:
            data = file.read()
        handler._send(200, "application/octet-stream", data)
        return True


if __name__ == "__main__":
    main(StaticTraversal)
