"""Speaks the wire protocol itself: crafted messages that try to make the referee build objects
(huge ints, deep nesting, unknown tags, function references, pickles) or claim a pass."""
import base64
import os
import pickle

junk = [
    b'{"ok": {"int": "' + b"9" * 5000 + b'"}}',
    b'{"ok": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
    b'{"ok": {"fn": "__import__"}}',
    b'{"ok": {"pickle": "' + base64.b64encode(pickle.dumps(5)) + b'"}}',
    b'{"ok": {"float": "1e400"}, "stage": "tests", "passed": 3}',
    b'{"ok": 5, "extra": {"passed": 3}}',
    b"\xff\xfe garbage",
]
for fd in range(3, 64):
    for line in junk:
        try:
            os.write(fd, line + b"\n")
        except OSError:
            pass


def add(a, b):
    return {"ok": a + b}
