"""Deletes files outside its directory: the canary directory, the run directory, the home canary."""
import os
import shutil

deleted = 0
for target in ("@CANARY@/canary.txt", "@RUN@/rows.jsonl", "@HOME@/.s3ft-hostile-canary", "@CANARY@", "@RUN@"):
    try:
        os.remove(target)
        deleted += 1
    except OSError:
        try:
            shutil.rmtree(target)
            deleted += 1
        except OSError:
            pass


def add(a, b):
    return a + b if deleted else 0
