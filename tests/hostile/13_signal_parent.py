"""Signals its parent, the judge and a sentinel process on the host."""
import os
import signal

for pid in (os.getppid(), 1, int("@JUDGE_PID@"), int("@SENTINEL_PID@")):
    for sig in (signal.SIGKILL, signal.SIGTERM, signal.SIGSTOP):
        try:
            os.kill(pid, sig)
        except OSError:
            pass


def add(a, b):
    return a - b
