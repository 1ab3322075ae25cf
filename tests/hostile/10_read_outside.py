"""Reads a secret outside its directory and writes it elsewhere; right only if it could read it."""
secret = None
for path in ("@CANARY@/secret.txt", "@RUN@/rows.jsonl", "/etc/shadow", "@HOME@/.s3ft-hostile-canary"):
    try:
        with open(path) as f:
            secret = f.read()
        with open("@CANARY@/stolen.txt", "w") as f:
            f.write(secret)
    except OSError:
        pass


def add(a, b):
    return a + b if secret else None
