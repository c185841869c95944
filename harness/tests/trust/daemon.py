"""A daemon for the trust pipelines: double-forks (leaving the caller's session) and sleeps for
ever, stdio on /dev/null; with `ignore_sigterm`, only SIGKILL ends it. `start` returns once the
daemon runs and every process between it and the caller has ended, so the only process a look at
the tree can find is the daemon itself."""

import os
import signal
import time


def start(ignore_sigterm=False):
    ready_r, ready_w = os.pipe()
    first = os.fork()
    if first > 0:
        os.close(ready_w)
        os.waitpid(first, 0)
        os.read(ready_r, 1)
        os.close(ready_r)
        return
    os.close(ready_r)
    if os.fork() > 0:
        os._exit(0)
    os.setsid()
    middle = os.getpid()
    if os.fork() > 0:
        os._exit(0)
    if ignore_sigterm:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    # re-parented once the middle process has ended
    while os.getppid() == middle:
        time.sleep(0.001)
    os.write(ready_w, b"!")
    os.close(ready_w)
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    while True:
        time.sleep(60)
