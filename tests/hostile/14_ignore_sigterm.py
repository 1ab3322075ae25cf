"""Ignores SIGTERM, SIGINT and SIGHUP in itself and in children that sleep for ever."""
import os
import signal
import time

for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
    signal.signal(s, signal.SIG_IGN)
for _ in range(4):
    if os.fork() == 0:
        while True:
            time.sleep(1)


def add(a, b):
    while True:
        time.sleep(1)
