"""Raises its own limits to unlimited (as root would), then forks and allocates beyond them."""
import os
import resource

raised = 0
for name in ("RLIMIT_NPROC", "RLIMIT_AS", "RLIMIT_CPU", "RLIMIT_FSIZE", "RLIMIT_NOFILE"):
    try:
        resource.setrlimit(getattr(resource, name), (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
        raised += 1
    except (ValueError, OSError):
        pass
try:
    os.setuid(0)
    raised += 1
except OSError:
    pass
big = None
try:
    big = bytearray(8 * 2**30)
except MemoryError:
    pass
kids = 0
for _ in range(500):
    try:
        if os.fork() == 0:
            import time

            time.sleep(30)
            os._exit(0)
        kids += 1
    except OSError:
        break


def add(a, b):
    return a + b if raised or big is not None or kids >= 500 else a - b
