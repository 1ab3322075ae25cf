"""Huge files: one file as large as it can grow, then as many 10 MiB files as fit, anywhere writable."""
import os

for d in (".", "/tmp", "/dev/shm", "/var/tmp", os.path.expanduser("~")):
    try:
        with open(os.path.join(d, "big"), "wb") as f:
            while True:
                f.write(b"x" * 2**20)
    except OSError:
        pass
    for i in range(100_000):
        try:
            with open(os.path.join(d, f"f{i}"), "wb") as f:
                f.write(b"x" * 10 * 2**20)
        except OSError:
            break


def add(a, b):
    return str(a + b)
