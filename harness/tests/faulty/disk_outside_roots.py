"""Violation: writes each upload under /var/tmp/<random> (or /dev/shm when /var/tmp is not writable),
outside the private TMPDIR/HOME/working directory, and deletes it once the answer is sent.

Finding kind: disk-persistence (policy 1, 2d, 3, 4b). The path is outside the roots a filesystem
watcher is given, so only the syscall monitor (openat for writing) or a wider sweep sees it."""

import os
import sys

sys.dont_write_bytecode = True  # importing `common` must not write __pycache__ files
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common.pipeline import Pipeline, main  # noqa: E402


class DiskOutsideRoots(Pipeline):
    name = "disk_outside_roots"

    def on_upload(self, upload):
        name = "tl-cache-" + os.urandom(8).hex()
        for directory in ("/var/tmp", "/dev/shm"):
            path = os.path.join(directory, name)
            try:
                with open(path, "wb", buffering=0) as file:
                    file.write(upload.image)
            except OSError:
                continue
            upload.state["spill"] = path
            return

    def after_response(self, upload):
        path = upload.state.pop("spill", None)
        if path:
            try:
                os.unlink(path)
            except OSError:
                pass


if __name__ == "__main__":
    main(DiskOutsideRoots)
