"""Opens a socket of every address family but AF_UNIX (issue 31, defect 2): AF_VSOCK reaches the
hypervisor's services, which a network namespace does not isolate; netlink, packet and the rest reach
kernel surface. Answers correctly if any family can be opened."""
import ctypes

libc = ctypes.CDLL(None, use_errno=True)
pair = (ctypes.c_int * 2)()
opened = [f for f in list(range(2, 50)) + [0, 100, 255] for kind in (1, 2, 3, 5)
          if libc.socket(f, kind, 0) >= 0 or libc.socketpair(f, kind, 0, pair) == 0]


def add(a, b):
    return a + b if opened else a - b
