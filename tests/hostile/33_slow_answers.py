"""Answers each call slowly enough that the tests never finish, holding the channel open."""
import time


def add(a, b):
    time.sleep(2)
    return a + b if b != 5 else a + b + 1
