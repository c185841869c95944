"""Ignores SIGTERM and, on its first request, double-forks a daemon that ignores SIGTERM too; then
answers every request a second late, so an audit of it lasts long enough to be interrupted. It
writes TRUST_MARKER (its TMPDIR, then "daemon" once the daemon runs) so a test knows when to strike.
Nothing of it may outlive the audit, whatever signal ends the harness."""

import os
import signal
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "faulty"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common.pipeline import Pipeline, main  # noqa: E402

import daemon  # noqa: E402


class StubbornDaemon(Pipeline):
    name = "stubborn_daemon"
    started = False

    def after_response(self, upload):
        if not StubbornDaemon.started:
            StubbornDaemon.started = True
            daemon.start(ignore_sigterm=True)
            with open(os.environ["TRUST_MARKER"], "w") as marker:
                marker.write(os.environ["TMPDIR"] + "\ndaemon\n")
        time.sleep(1)


def _stubborn_main():
    real_signal = signal.signal

    def keep_ignoring(signum, handler):
        if signum == signal.SIGTERM:
            return real_signal(signum, signal.SIG_IGN)
        return real_signal(signum, handler)

    signal.signal = keep_ignoring
    main(StubbornDaemon)


if __name__ == "__main__":
    _stubborn_main()
