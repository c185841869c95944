"""Scripted faults as a team meets them: `traceless mocks --behaviour openai=429,ok --behaviour
gemini=safety-block`, then new scripts through the control endpoint, each answer checked against
the exception (or blocked response) the official SDK documents for it.

Reads only the variables `traceless mocks` announces (OPENAI_BASE_URL, OPENAI_API_KEY,
GOOGLE_GEMINI_BASE_URL, GEMINI_API_KEY, SSL_CERT_FILE, TRACELESS_MOCKS_CONTROL); exits non-zero on
the first surprise.
"""

import json
import os
import ssl
import urllib.request

import openai
from google import genai
from google.genai import errors, types

IMAGE_MODEL = "gpt-image-2.5-sunburst"
GEMINI_MODEL = "gemini-3.1-flash-lite-image"
control = os.environ["TRACELESS_MOCKS_CONTROL"]

oai = openai.OpenAI(max_retries=0)
gem = genai.Client(
    api_key=os.environ["GEMINI_API_KEY"],
    http_options=types.HttpOptions(
        base_url=os.environ["GOOGLE_GEMINI_BASE_URL"],
        client_args={"verify": ssl.create_default_context(cafile=os.environ["SSL_CERT_FILE"])},
        retry_options=types.HttpRetryOptions(attempts=1),
    ),
)


def script(provider, behaviours):
    req = urllib.request.Request(f"{control}/behaviour/{provider}", data=behaviours.encode(), method="PUT")
    with urllib.request.urlopen(req) as res:
        state = json.load(res)
    assert state[provider] == behaviours.split(","), state


def generate():
    return oai.images.generate(model=IMAGE_MODEL, prompt="a lighthouse at dusk", size="1024x1024")


def gemini():
    return gem.models.generate_content(model=GEMINI_MODEL, contents="a lighthouse at dusk")


def expect(exc_type, call, what):
    try:
        call()
    except exc_type as e:
        return e
    raise SystemExit(f"{what}: expected {exc_type.__name__}")


# From the command line: openai=429,ok
e = expect(openai.RateLimitError, generate, "openai 429")
assert e.status_code == 429 and e.code == "rate_limit_exceeded", (e.status_code, e.code)
assert generate().data[0].b64_json, "openai ok after the 429"

# From the command line: gemini=safety-block. The SDK raises nothing: the prompt is blocked.
blocked = gemini()
assert blocked.prompt_feedback.block_reason == types.BlockedReason.PROHIBITED_CONTENT, blocked
assert not blocked.candidates, blocked

# Changed while running, through the control endpoint.
script("openai", "safety-block,500,503,ok")
e = expect(openai.BadRequestError, generate, "openai safety block")
assert e.code == "moderation_blocked", e.code
e = expect(openai.InternalServerError, generate, "openai 500")
assert e.status_code == 500, e.status_code
e = expect(openai.InternalServerError, generate, "openai 503")
assert e.status_code == 503, e.status_code
assert generate().data[0].b64_json, "openai ok after the script"

script("gemini", "429,500,ok")
e = expect(errors.ClientError, gemini, "gemini 429")
assert e.code == 429 and e.status == "RESOURCE_EXHAUSTED", (e.code, e.status)
e = expect(errors.ServerError, gemini, "gemini 500")
assert e.code == 500, e.code
ok = gemini()
assert any(p.inline_data for p in ok.candidates[0].content.parts), ok

print("faults ok")
