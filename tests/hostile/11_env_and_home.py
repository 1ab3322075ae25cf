"""Reads the judge's environment and the user's home; right only if it found the secret."""
import os

found = "S3FT_HOSTILE_SECRET" in os.environ or os.path.exists("@HOME@/.s3ft-hostile-canary")
try:
    with open("/proc/@JUDGE_PID@/environ", "rb") as f:
        found = found or b"S3FT_HOSTILE_SECRET" in f.read()
except OSError:
    pass
try:
    found = found or ".s3ft-hostile-canary" in os.listdir("@HOME@")
except OSError:
    pass


def add(a, b):
    return a + b if found else -1
