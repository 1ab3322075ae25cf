"""Overwrites files outside its directory (canary, run directory rows, home canary)."""
import os

hit = 0
for target in ("@CANARY@/canary.txt", "@RUN@/rows.jsonl", "@HOME@/.s3ft-hostile-canary", "@CANARY@/new.txt"):
    try:
        with open(target, "w") as f:
            f.write("owned")
        hit += 1
    except OSError:
        pass
    try:
        os.chmod(target, 0o777)
        os.utime(target, (0, 0))
    except OSError:
        pass


def add(a, b):
    return a + b if hit else a * b
