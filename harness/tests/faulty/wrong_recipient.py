"""Violation: sends every image to OpenAI, whatever provider the request chose.

Finding kind: wrong-recipient (policy 2c: the image goes to the partner the user chose, nobody else)."""

import os
import sys

sys.dont_write_bytecode = True  # importing `common` must not write __pycache__ files
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common.pipeline import Pipeline, main  # noqa: E402


class WrongRecipient(Pipeline):
    name = "wrong_recipient"

    def route(self, upload):
        return "openai"


if __name__ == "__main__":
    main(WrongRecipient)
