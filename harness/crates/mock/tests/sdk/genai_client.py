"""The google-genai client the Gemini SDK scripts drive the mock with, from the variables sdk.rs sets."""

import os
import ssl

from google import genai
from google.genai import types


def client_and_input():
    """A client for TRACELESS_GEMINI_URL with TRACELESS_GEMINI_KEY that trusts only TRACELESS_CA_FILE
    and never retries, and the bytes of TRACELESS_INPUT_PNG."""
    with open(os.environ["TRACELESS_INPUT_PNG"], "rb") as f:
        input_png = f.read()
    client = genai.Client(
        api_key=os.environ["TRACELESS_GEMINI_KEY"],
        http_options=types.HttpOptions(
            base_url=os.environ["TRACELESS_GEMINI_URL"],
            client_args={"verify": ssl.create_default_context(cafile=os.environ["TRACELESS_CA_FILE"])},
            retry_options=types.HttpRetryOptions(attempts=1),
        ),
    )
    return client, input_png
