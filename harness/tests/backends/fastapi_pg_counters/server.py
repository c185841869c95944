"""Photo editing API with usage counters: the API of ../fastapi_genai, and two numbers in PostgreSQL.

POST /api/edit and GET /healthz are fastapi_genai's, with its privacy measures (age gate first, the
photo re-encoded without metadata, nothing on disk, no access log). On top of them, the `counters`
table (schema.sql) counts edits that succeeded and failed: a number per outcome, never what was
asked, by whom or with which photo. The audit reads the database's files at the end and finds none
of the requests in them: it passes.

Configuration (environment): DATABASE_URL (a libpq connection string), and fastapi_genai's
GEMINI_API_KEY, GOOGLE_GEMINI_BASE_URL, PORT, HOST.
"""

import os
import sys
import threading
from pathlib import Path

import psycopg
from fastapi import FastAPI

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "fastapi_genai"))
import app as editor  # noqa: E402  (fastapi_genai's photo-editing API, reused whole)

app = FastAPI(title="photo-counters", docs_url=None, redoc_url=None, openapi_url=None)


class Counters:
    """One connection for the app's life; FastAPI's thread pool shares it under a lock."""

    def __init__(self, url: str):
        self.db = psycopg.connect(url, autocommit=True)
        self.lock = threading.Lock()

    def count(self, outcome: str) -> None:
        with self.lock:
            self.db.execute("UPDATE counters SET n = n + 1 WHERE name = %s", (outcome,))


counters = Counters(os.environ["DATABASE_URL"])


@app.get("/healthz")
def healthz():
    return {"status": "ok"}


@app.post("/api/edit")
def edit(req: editor.EditRequest):
    return editor.answer(req, lambda _, ok: counters.count("generated" if ok else "failed"))


if __name__ == "__main__":
    editor.main(app)
