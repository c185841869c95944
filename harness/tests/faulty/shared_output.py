"""Violation: writes every generated image to a fixed ./output.png and answers by reading that file
back; when the provider fails (429, 5xx, timeout, refusal), it answers 200 with whatever output.png
holds, that is the previous request's image. Concurrent requests also race on the one file.

Finding kinds: cross-request-leak (policy 1, 2c, 4c: one user's result reaches another user); the file
on disk may also be reported as disk-persistence (the output is derived from the user's photo).
The leak needs a provider failure after a success within one run of the pipeline."""

import os
import sys

sys.dont_write_bytecode = True  # importing `common` must not write __pycache__ files
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common.pipeline import Pipeline, main  # noqa: E402

OUTPUT_FILE = "output.png"


class SharedOutput(Pipeline):
    name = "shared_output"

    def on_output(self, upload, output):
        with open(OUTPUT_FILE, "wb", buffering=0) as file:
            file.write(output)
        with open(OUTPUT_FILE, "rb") as file:
            return file.read()

    def on_provider_failure(self, upload, failure):
        try:
            with open(OUTPUT_FILE, "rb") as file:
                return bytearray(file.read())
        except FileNotFoundError:
            raise failure from None


if __name__ == "__main__":
    main(SharedOutput)
