"""Memory that no address-space limit counts (issue 31, defects 8 and 9): 40 processes, each filling one
kind until refused: 10 MiB memfds (never mapped), AF_UNIX socket buffers (both directions, SO_SNDBUF
raised), pipe buffers (F_SETPIPE_SZ raised), empty files in the working tmpfs (kernel inodes, not
blocks). Each process stops at three times its share of the bound, so that where nothing bounds it the
host lends at most three times the bound. Answers correctly only if the processes still alive hold more
than the sandbox's bound (RLIMIT_AS + 128 MiB), by their own count. tests/test_sandbox_memory.py runs it
one kind at a time."""
import os
import resource
import select
import time

KINDS = ("memfd", "socket", "pipe", "inode")
PROCS = 40
BOUND = resource.getrlimit(resource.RLIMIT_AS)[0] + 128 * 2**20


def fill(kind: str, keep: list) -> int:
    held, t0 = 0, time.monotonic()
    while time.monotonic() - t0 < 1.5 and held < 3 * BOUND // PROCS:
        try:
            if kind == "memfd":
                fd = os.memfd_create("hog")
                keep.append(fd)
                held += os.write(fd, b"x" * 10 * 2**20)
            elif kind == "socket":
                import socket

                pair = socket.socketpair()
                keep.append(pair)
                for s in pair:
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 2**30)
                    s.setblocking(False)
                    try:
                        while held < 3 * BOUND // PROCS:
                            held += s.send(b"x" * 65536)
                    except BlockingIOError:
                        pass
            elif kind == "pipe":
                import fcntl

                r, w = os.pipe()
                keep.append((r, w))
                try:
                    fcntl.fcntl(w, 1031, 2**20)  # F_SETPIPE_SZ
                except OSError:
                    pass
                os.set_blocking(w, False)
                try:
                    while True:
                        held += os.write(w, b"x" * 65536)
                except BlockingIOError:
                    pass
            else:
                os.makedirs(f"inodes{os.getpid()}", exist_ok=True)
                for _ in range(1000):
                    os.close(os.open(f"inodes{os.getpid()}/{len(keep)}", os.O_CREAT | os.O_WRONLY))
                    keep.append(None)
                    held += 1024  # an inode and a dentry, about 1 KiB of kernel memory
        except OSError:
            break
    return held


r, w = os.pipe()
kids = []
for i in range(PROCS):
    try:
        pid = os.fork()
    except OSError:
        break
    if pid == 0:
        keep: list = []
        try:
            os.write(w, f"{os.getpid()} {fill(KINDS[i % len(KINDS)], keep)}\n".encode())
        finally:
            time.sleep(60)
            os._exit(0)
    kids.append(pid)
reports, data, deadline = {}, b"", time.monotonic() + 4
while len(reports) < len(kids) and select.select([r], [], [], max(0, deadline - time.monotonic()))[0]:
    data += os.read(r, 65536)
    reports = dict(map(int, line.split()) for line in data.decode().splitlines())
alive = [pid for pid in kids if os.waitpid(pid, os.WNOHANG) == (0, 0)]
held = sum(reports.get(pid, 0) for pid in alive)


def add(a, b):
    return a + b if held > BOUND else a - b
