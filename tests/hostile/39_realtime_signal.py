"""Dies of a real-time signal in the call (issue 31, defect 1): SIGRTMIN+3 has no name in Python's
`signal.Signals`. As its sandbox's pid 1 the runner ignores the signal (the kernel protects a namespace's
init), so it then exits with the status bwrap reports for that death: 128 + the signal's number."""
import os
import signal


def add(a, b):
    os.kill(os.getpid(), signal.SIGRTMIN + 3)
    os._exit(128 + signal.SIGRTMIN + 3)
