"""Violation, logged late: keeps every upload (as write_behind does) and, after its twelfth
answer, prints them all to stderr in base64. By then the first requests were judged long ago, and
with `[audit] live_requests = 2` their needles were retired from the live index: only the
end-of-run sweep of the spooled output with every needle can name request 1 in that log."""

import base64
import sys

sys.dont_write_bytecode = True

from write_behind import WriteBehind, main  # noqa: E402


class PrintBehind(WriteBehind):
    name = "print_behind"

    def after_response(self, upload):
        with self._lock:
            if len(self._kept) == 12:
                for i, image in enumerate(self._kept):
                    line = base64.b64encode(image).decode()
                    print(f"backlog {i + 1}: {line}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    main(PrintBehind)
