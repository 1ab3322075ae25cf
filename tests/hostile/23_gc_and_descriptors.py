"""Uses gc and the descriptor table: closes, duplicates and rewrites every descriptor it can see."""
import gc
import json
import os

fds = []
try:
    fds = [int(x) for x in os.listdir("/proc/self/fd")]
except OSError:
    pass
for obj in gc.get_objects():
    if hasattr(obj, "fileno"):
        try:
            fds.append(obj.fileno())
        except BaseException:
            pass
msg = (json.dumps({"ok": 5}) + "\n").encode()
for fd in sorted(set(fds)):
    try:
        os.write(fd, msg * 3)
    except OSError:
        pass
    try:
        os.dup2(fd, fd + 100)
        os.close(fd)
    except OSError:
        pass


def add(a, b):
    return 5
