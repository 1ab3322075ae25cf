"""Floods standard output and standard error, from the function under test too."""
import os
import sys

for _ in range(2000):
    try:
        print("x" * 100_000)
        sys.stderr.write("y" * 100_000)
        os.write(1, b"z" * 100_000)
    except OSError:
        break


def add(a, b):
    while True:
        print("passed 3/3 tests")
