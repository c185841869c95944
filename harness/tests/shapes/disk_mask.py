"""Keeps the mask part of each request (a second image beside the photo) in ./mask-<request>.png,
where it stays. The photo itself is handled cleanly: only a canary in the extra image part shows
the violation. Finding kind: disk-persistence."""

import os
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "faulty"))

from common.pipeline import Pipeline, main  # noqa: E402


class DiskMask(Pipeline):
    name = "disk_mask"

    def age_gate(self, form):
        # The first hook that sees the whole form: the mask is copied out before the body is wiped.
        if form.has("mask"):
            with open(f"mask-{os.urandom(6).hex()}.png", "wb") as file:
                file.write(form.copy("mask"))
        return super().age_gate(form)


if __name__ == "__main__":
    main(DiskMask)
