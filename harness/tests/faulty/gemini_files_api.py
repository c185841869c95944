"""Violation: uploads the photo through the Gemini Files API (resumable start, then upload+finalize)
and calls generateContent with a `file_data` reference; Google keeps such files for 48 hours.

Finding kind: provider-retention (policy 2c: the partner does not store face data after processing)."""

import os
import sys

sys.dont_write_bytecode = True  # importing `common` must not write __pycache__ files
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import json  # noqa: E402
import urllib.parse  # noqa: E402

from common.pipeline import IMAGE_MIME, Pipeline, ProviderFailure, main, parse_json_with_blobs, wipe  # noqa: E402


class GeminiFilesApi(Pipeline):
    name = "gemini_files_api"

    def call_gemini(self, upload, image):
        base = urllib.parse.urlsplit(self.settings.gemini_base)
        mime = IMAGE_MIME[upload.image_format]
        start_url = urllib.parse.urlunsplit((base.scheme, base.netloc, "/upload" + base.path + "/files", "", ""))
        start = self.provider_request(
            start_url,
            {
                "x-goog-api-key": self.settings.gemini_key,
                "Content-Type": "application/json",
                "X-Goog-Upload-Protocol": "resumable",
                "X-Goog-Upload-Command": "start",
                "X-Goog-Upload-Header-Content-Length": str(len(image)),
                "X-Goog-Upload-Header-Content-Type": mime,
            },
            b'{"file":{"display_name":"upload"}}',
        )
        upload_url = start.headers.get("x-goog-upload-url") or ""
        # Follow the upload URL only when it points back at the configured Gemini host.
        if start.status != 200 or urllib.parse.urlsplit(upload_url).netloc != base.netloc:
            raise ProviderFailure(502, "provider_error", "the Files API did not start the upload")
        done = self.provider_request(
            upload_url,
            {
                "x-goog-api-key": self.settings.gemini_key,
                "X-Goog-Upload-Command": "upload, finalize",
                "X-Goog-Upload-Offset": "0",
            },
            image,
        )
        try:
            payload, _ = parse_json_with_blobs(done.body)
            uri = payload["file"]["uri"]
        except (ValueError, KeyError, TypeError):
            raise ProviderFailure(502, "provider_error", "the Files API answer has no file uri") from None
        body = bytearray(
            json.dumps(
                {
                    "contents": [
                        {"role": "user", "parts": [{"text": upload.prompt}, {"file_data": {"mime_type": mime, "file_uri": uri}}]}
                    ],
                    "generationConfig": {"responseModalities": ["TEXT", "IMAGE"]},
                }
            ).encode()
        )
        try:
            return self.gemini_generate(upload, body)
        finally:
            wipe(body)


if __name__ == "__main__":
    main(GeminiFilesApi)
