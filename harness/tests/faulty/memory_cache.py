"""Violation: keeps every upload in a module-level dict, forever ("cache for retries").

Finding kind: memory-retention (policy 2d, 3, 4b: images are held in memory only while processed)."""

import os
import sys

sys.dont_write_bytecode = True  # importing `common` must not write __pycache__ files
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common.pipeline import Pipeline, main  # noqa: E402

UPLOAD_CACHE = {}


class MemoryCache(Pipeline):
    name = "memory_cache"

    def on_upload(self, upload):
        UPLOAD_CACHE[upload.request_id] = bytes(upload.image)


if __name__ == "__main__":
    main(MemoryCache)
