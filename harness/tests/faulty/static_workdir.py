"""Violation: saves each upload as ./uploads/<request>-<random>.png and serves GET /uploads/... and any
GET /<path> straight from the working directory, with no credentials asked.

Finding kinds: public-exposure (policy 4c, 6: nobody else can fetch a user's image) and
disk-persistence (policy 1, 2d, 3, 4b: the upload is stored)."""

import os
import sys

sys.dont_write_bytecode = True  # importing `common` must not write __pycache__ files
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import mimetypes  # noqa: E402
import urllib.parse  # noqa: E402

from common.pipeline import Pipeline, main  # noqa: E402


class StaticWorkdir(Pipeline):
    name = "static_workdir"

    def on_upload(self, upload):
        os.makedirs("uploads", exist_ok=True)
        path = os.path.join("uploads", f"{upload.request_id:06d}-{os.urandom(4).hex()}.png")
        with open(path, "wb", buffering=0) as file:
            file.write(upload.image)

    def handle_get(self, handler, path):
        root = os.path.realpath(os.getcwd())
        target = os.path.realpath(os.path.join(root, urllib.parse.unquote(path).lstrip("/")))
        if not target.startswith(root + os.sep) or not os.path.isfile(target):
            return False
        with open(target, "rb") as file:
            data = file.read()
        handler._send(200, mimetypes.guess_type(target)[0] or "application/octet-stream", data)
        return True


if __name__ == "__main__":
    main(StaticWorkdir)
