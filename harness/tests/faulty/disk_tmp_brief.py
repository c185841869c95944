"""Violation: writes each upload to $TMPDIR and deletes it about 1 ms later.

Finding kind: disk-persistence (policy 1, 2d, 3, 4b: images are processed in memory and not stored).
The file lives for a millisecond: only a monitor that reads files as they are written catches it."""

import os
import sys

sys.dont_write_bytecode = True  # importing `common` must not write __pycache__ files
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import tempfile  # noqa: E402
import time  # noqa: E402

from common.pipeline import Pipeline, main  # noqa: E402


class DiskTmpBrief(Pipeline):
    name = "disk_tmp_brief"

    def on_upload(self, upload):
        fd, path = tempfile.mkstemp(prefix="upload-", suffix="." + upload.image_format)
        try:
            os.write(fd, upload.image)
        finally:
            os.close(fd)
        time.sleep(0.001)
        os.unlink(path)


if __name__ == "__main__":
    main(DiskTmpBrief)
