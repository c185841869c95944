"""Photo editing API with a history: the API of ../fastapi_genai, and every instruction kept in PostgreSQL.

POST /api/edit and GET /healthz are fastapi_genai's, with its privacy measures (age gate first, the
photo re-encoded without metadata, nothing on disk, no access log). On top of them, each successful
edit adds a row to the `history` table (schema.sql) so that a user could see what they asked for.

KNOWN BUG, kept on purpose (this app is an example the audit must catch): the history is the prompt
itself, stored in the database for good. The database is a declared local service of the audit
([[service]] in traceless.toml): its files are read at the end, and every instruction found there (in
the table's heap file, in the write-ahead log) is a service-retention finding.

Configuration (environment): DATABASE_URL (a libpq connection string), and fastapi_genai's
GEMINI_API_KEY, GOOGLE_GEMINI_BASE_URL, PORT, HOST.
"""

import os
import sys
from pathlib import Path

import psycopg
from fastapi import FastAPI

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "fastapi_genai"))
import app as editor  # noqa: E402  (fastapi_genai's photo-editing API, reused whole)

app = FastAPI(title="photo-history", docs_url=None, redoc_url=None, openapi_url=None)


@app.get("/healthz")
def healthz():
    with psycopg.connect(os.environ["DATABASE_URL"]) as db:
        db.execute("SELECT 1")
    return {"status": "ok"}


def remember(req: editor.EditRequest, ok: bool) -> None:
    # BUG: the instruction of every generated image is kept for good.
    if ok:
        with psycopg.connect(os.environ["DATABASE_URL"], autocommit=True) as db:
            db.execute("INSERT INTO history (instruction) VALUES (%s)", (req.instruction,))


@app.post("/api/edit")
def edit(req: editor.EditRequest):
    return editor.answer(req, remember)


if __name__ == "__main__":
    editor.main(app)
