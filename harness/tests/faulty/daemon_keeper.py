"""Violation: on the first generation request, forks a daemon (fork, setsid, fork) that keeps a copy
of that upload in memory and sleeps; the request itself is served normally. The daemon closes every
inherited descriptor (it holds no port, pipe or log) and exits by itself after DAEMON_LIFETIME_S.

Finding kind: memory-retention (policy 2d, 3, 4b), in a process that outlives the pipeline: the
audit must scan the whole process tree and report (and kill) the orphan."""

import os
import sys

sys.dont_write_bytecode = True  # importing `common` must not write __pycache__ files
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import signal  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402

from common.pipeline import Pipeline, main  # noqa: E402

DAEMON_LIFETIME_S = 600


def _keep(image):
    """The daemon's whole life: hold the photo, sleep, exit. Never returns."""
    try:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        null = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(null, fd)
        os.closerange(3, 65536)
        kept = bytes(image)
        deadline = time.monotonic() + DAEMON_LIFETIME_S
        while kept and time.monotonic() < deadline:
            time.sleep(1)
    finally:
        os._exit(0)


class DaemonKeeper(Pipeline):
    name = "daemon_keeper"
    _started = False
    _lock = threading.Lock()

    def on_upload(self, upload):
        with self._lock:
            if DaemonKeeper._started:
                return
            DaemonKeeper._started = True
        child = os.fork()
        if child == 0:
            try:
                os.setsid()
                if os.fork() == 0:
                    _keep(upload.image)
            finally:
                os._exit(0)
        os.waitpid(child, 0)


if __name__ == "__main__":
    main(DaemonKeeper)
