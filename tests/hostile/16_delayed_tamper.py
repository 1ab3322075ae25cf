"""Answers correctly but for the last test, while a child waits for the verdict and then tampers."""
import os
import time

if os.fork() == 0:
    os.setpgid(0, 0)
    t0 = time.time()
    while time.time() - t0 < 20:
        time.sleep(0.2)
        try:
            with open("@CANARY@/canary.txt", "a") as f:
                f.write("tampered")
        except OSError:
            pass
    os._exit(0)


def add(a, b):
    return a + b if b != 5 else 0
