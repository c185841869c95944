"""While handling its first request, before answering it, double-forks a daemon that sleeps: a
process that outlives the request it was started for. The audit must name that request."""

import os
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "faulty"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common.pipeline import Pipeline, main  # noqa: E402

import daemon  # noqa: E402


class LingeringDaemon(Pipeline):
    name = "lingering_daemon"
    started = False

    def on_upload(self, upload):
        if not LingeringDaemon.started:
            LingeringDaemon.started = True
            daemon.start()


if __name__ == "__main__":
    main(LingeringDaemon)
