"""Violation: calls OpenAI `POST /v1/responses` with the image_generation tool and the photo as an
input_image data URL, without `"store": false` (the API default stores the response for 30 days).

Finding kind: provider-retention (policy 2c: the partner does not store face data after processing)."""

import os
import sys

sys.dont_write_bytecode = True  # importing `common` must not write __pycache__ files
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import json  # noqa: E402

from common.pipeline import (  # noqa: E402
    IMAGE_MIME,
    Pipeline,
    ProviderFailure,
    json_with_base64,
    main,
    take_blob,
    wipe,
)


class ResponsesStore(Pipeline):
    name = "responses_store"

    def call_openai(self, upload, image):
        prefix = (
            '{"model":"gpt-5","input":[{"role":"user","content":[{"type":"input_text","text":'
            + json.dumps(upload.prompt)
            + '},{"type":"input_image","image_url":"data:'
            + IMAGE_MIME[upload.image_format]
            + ';base64,'
        ).encode()
        suffix = b'"}]}],"tools":[{"type":"image_generation","model":"gpt-image-2.5-sunburst"}],"tool_choice":{"type":"image_generation"}}'
        body = json_with_base64(prefix, image, suffix)
        headers = {"Authorization": f"Bearer {self.settings.openai_key}", "Content-Type": "application/json"}
        answer, blobs = None, []
        try:
            answer = self.provider_request(f"{self.settings.openai_base}/responses", headers, body)
            payload, blobs = self._parse_answer(answer)
            if answer.status != 200:
                raise self._failure_from_status(answer, payload, refused=False)
            for item in payload.get("output") or [] if isinstance(payload, dict) else []:
                if isinstance(item, dict) and item.get("type") == "image_generation_call":
                    result = take_blob(item.get("result"), blobs)
                    if result is not None:
                        return self._checked_image(bytearray(result))
            raise ProviderFailure(502, "provider_error", "the provider's answer carries no image")
        finally:
            wipe(body)
            for blob in blobs:
                wipe(blob)
            if answer is not None:
                wipe(answer.body)


if __name__ == "__main__":
    main(ResponsesStore)
