"""Exits with status 200 inside the call (issue 31, defect 1): bwrap reports a signal as 128 + its number,
and 200 - 128 = 72 is no signal; reading it as one once crashed the judge and lost the chunk's rows."""
import os


def add(a, b):
    os._exit(200)
