"""Drives the Gemini mock with the official google-genai SDK; exits non-zero if any answer is not parsed as expected."""

import os
import sys

from google import genai
from google.genai import errors, types

sys.path.insert(0, os.path.dirname(__file__))
from genai_client import client_and_input  # noqa: E402
from pngcheck import assert_png  # noqa: E402

client, input_png = client_and_input()
MODEL = "gemini-2.5-flash-image"

config = types.GenerateContentConfig(response_modalities=["TEXT", "IMAGE"])
contents = [types.Part.from_bytes(data=input_png, mime_type="image/png"), "sdk gemini tlp-sdk00000003"]


def images_of(response):
    out = []
    for cand in response.candidates or []:
        for part in (cand.content.parts if cand.content else None) or []:
            if part.inline_data is not None:
                out.append(part.inline_data.data)
    return out


# 1. generate_content with an image part (behaviour: ok)
resp = client.models.generate_content(model=MODEL, contents=contents, config=config)
imgs = images_of(resp)
assert len(imgs) == 1, resp
assert_png(imgs[0], "generate_content inline_data")
assert resp.candidates[0].finish_reason == types.FinishReason.STOP, resp.candidates[0].finish_reason
assert resp.usage_metadata.total_token_count > 0

# 2. generate_content_stream (behaviour: ok)
chunks = list(client.models.generate_content_stream(model=MODEL, contents=contents, config=config))
streamed = [img for c in chunks for img in images_of(c)]
assert len(streamed) == 1, chunks
assert_png(streamed[0], "stream inline_data")
assert chunks[-1].candidates[0].finish_reason == types.FinishReason.STOP, chunks[-1]

# 3. a 429 (behaviour: 429:1)
try:
    client.models.generate_content(model=MODEL, contents=contents, config=config)
    raise SystemExit("expected a 429 ClientError")
except errors.ClientError as e:
    assert e.code == 429, e.code
    assert e.status == "RESOURCE_EXHAUSTED", e.status

# 4. a safety block (behaviour: safety-block)
blocked = client.models.generate_content(model=MODEL, contents=contents, config=config)
assert blocked.prompt_feedback is not None, blocked
assert blocked.prompt_feedback.block_reason == types.BlockedReason.PROHIBITED_CONTENT, blocked.prompt_feedback
assert not blocked.candidates, blocked.candidates

print(f"google-genai {genai.__version__}: all answers parsed")
