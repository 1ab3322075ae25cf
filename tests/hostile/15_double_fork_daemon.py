"""A double-forked, detached daemon that outlives the program and tampers with files later."""
import os
import time

if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        for fd in range(3):
            os.close(fd)
        time.sleep(3)
        for target in ("@CANARY@/daemon_was_here.txt", "@CANARY@/canary.txt"):
            try:
                with open(target, "w") as f:
                    f.write("late")
            except OSError:
                pass
        os._exit(0)
    os._exit(0)


def add(a, b):
    return a + b + 1
