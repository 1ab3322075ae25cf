"""Connects to a server on the host's localhost (the test's listener); right only if it got through."""
import socket

ok = False
for host in ("127.0.0.1", "localhost", "::1"):
    try:
        s = socket.create_connection((host, int("@PORT@")), timeout=1)
        s.sendall(b"hello from the sandbox")
        ok = True
    except OSError:
        pass
try:
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.sendto(b"x", ("8.8.8.8", 53))
except OSError:
    pass


def add(a, b):
    return a + b if ok else a - b
