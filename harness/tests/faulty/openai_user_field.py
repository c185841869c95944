"""Violation: adds `user=<X-Device-Id>` to the OpenAI images/edits request.

Finding kinds: provider-retention (a `user` field asks the provider to associate and keep an end-user
identifier; policy 2c) and personal-data (a client identifier sent to a provider; policy 1, 2c)."""

import os
import sys

sys.dont_write_bytecode = True  # importing `common` must not write __pycache__ files
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common.pipeline import Pipeline, main  # noqa: E402


class OpenAiUserField(Pipeline):
    name = "openai_user_field"

    def openai_form_fields(self, upload):
        fields = super().openai_form_fields(upload)
        return fields + [("user", upload.headers.get("X-Device-Id", "anonymous"))]


if __name__ == "__main__":
    main(OpenAiUserField)
