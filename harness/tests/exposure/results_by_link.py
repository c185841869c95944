"""Answers each generation with a link, {"url": "/r/<id>"}, and serves the result there. The
results are kept in memory, never on disk, so no written file leads to them: only the link in the
answer does. With RESULTS_ONCE=1 a result is served once and forgotten (clean); without it every
result stays fetchable by anyone who has the link, for as long as the process runs.

Finding kind (without RESULTS_ONCE): public-exposure, through the link the answer named; the kept
results are in memory too (memory-retention)."""

import json
import os
import sys
import threading

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "faulty"))

from common.pipeline import Pipeline, main, wipe  # noqa: E402


class ResultsByLink(Pipeline):
    name = "results_by_link"
    results = {}
    lock = threading.Lock()

    def answer(self, upload, output):
        key = os.urandom(8).hex() + "1"
        with self.lock:
            self.results[key] = bytearray(output)
        return "application/json", json.dumps({"url": f"/r/{key}"}).encode()

    def handle_get(self, handler, path):
        if not path.startswith("/r/"):
            return False
        with self.lock:
            if os.environ.get("RESULTS_ONCE") == "1":
                data = self.results.pop(path[3:], None)
            else:
                data = self.results.get(path[3:])
        if data is None:
            return False
        handler._send(200, "image/png", data)
        if os.environ.get("RESULTS_ONCE") == "1":
            wipe(data)
        return True


if __name__ == "__main__":
    main(ResultsByLink)
