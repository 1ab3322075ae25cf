"""Infinite loop in the function under test (and a busy child besides)."""
import os

if os.fork() == 0:
    while True:
        pass


def add(a, b):
    while True:
        a += b
