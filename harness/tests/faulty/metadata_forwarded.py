"""Violation: forwards the original upload to the provider, EXIF/XMP/text metadata (GPS, camera,
description) included.

Finding kind: personal-data (policy 1, 2c: image metadata is stripped before a provider sees it)."""

import os
import sys

sys.dont_write_bytecode = True  # importing `common` must not write __pycache__ files
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common.pipeline import Pipeline, main, wipe  # noqa: E402


class MetadataForwarded(Pipeline):
    name = "metadata_forwarded"

    def strip_metadata(self, upload):
        wipe(super().strip_metadata(upload))  # still refuses broken images, but sends the original
        return bytearray(upload.image)


if __name__ == "__main__":
    main(MetadataForwarded)
