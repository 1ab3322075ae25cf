"""The sandbox's seccomp filter, as the classic-BPF bytes bwrap's `--seccomp FD` loads.

Built here, without libseccomp, for x86_64 and aarch64. It refuses (EPERM) the calls that make or enter namespaces (`unshare`,
`setns`, `clone` with any CLONE_NEW* flag) and those that mount, trace, load kernel code or reach
rarely needed kernel surface (keyrings, bpf, perf, userfaultfd, io_uring, the kernel log), and System V
IPC and POSIX message queues (`shmget`, `msgget`, `semget`, `mq_open`: memory that neither the address
space limit nor, on every host, a cgroup counts);
`clone3`, whose flags a filter cannot read, gets ENOSYS so that the C library falls back to
`clone`. Sockets: `socket` and `socketpair` of any family but AF_UNIX are refused (EPERM), so no
AF_VSOCK, netlink, packet or other socket reaches what a network namespace does not isolate. Where no
memory cgroup counts what the sandbox holds (`cgroup=False`), AF_UNIX sockets and `memfd_create` are
refused too: their buffers and files are memory outside the address-space limit. A call
made through another ABI (32-bit `int 0x80`, x32) kills the process. Where there is no filter for the
architecture, `program()` returns None and the sandbox refuses to start (fail closed).
"""

from __future__ import annotations

import errno
import platform
import struct

_LD_ABS, _JEQ, _JGE, _JSET, _RET = 0x20, 0x15, 0x35, 0x45, 0x06
_ALLOW, _ERRNO, _KILL = 0x7FFF0000, 0x00050000, 0x80000000
AF_UNIX = 1
_CLONE_NEW = 0x00020000 | 0x02000000 | 0x04000000 | 0x08000000 | 0x10000000 | 0x20000000 | 0x40000000
_BLOCKED = ("unshare setns mount umount2 pivot_root chroot keyctl add_key request_key bpf perf_event_open "
            "userfaultfd io_uring_setup io_uring_enter io_uring_register open_tree move_mount fsopen fsconfig "
            "fsmount fspick mount_setattr ptrace kexec_load kexec_file_load init_module finit_module "
            "delete_module swapon swapoff reboot acct syslog shmget msgget semget mq_open").split()  # fmt: skip
_NEW = {"io_uring_setup": 425, "io_uring_enter": 426, "io_uring_register": 427, "open_tree": 428,
        "move_mount": 429, "fsopen": 430, "fsconfig": 431, "fsmount": 432, "fspick": 433, "clone3": 435,
        "mount_setattr": 442}  # fmt: skip
ARCHES = {
    "x86_64": (0xC000003E, _NEW | {
        "unshare": 272, "setns": 308, "mount": 165, "umount2": 166, "pivot_root": 155, "chroot": 161,
        "keyctl": 250, "add_key": 248, "request_key": 249, "bpf": 321, "perf_event_open": 298,
        "userfaultfd": 323, "ptrace": 101, "kexec_load": 246, "kexec_file_load": 320, "init_module": 175,
        "finit_module": 313, "delete_module": 176, "swapon": 167, "swapoff": 168, "reboot": 169, "acct": 163,
        "syslog": 103, "clone": 56, "socket": 41, "socketpair": 53, "shmget": 29, "msgget": 68, "semget": 64,
        "mq_open": 240, "memfd_create": 319}),
    "aarch64": (0xC00000B7, _NEW | {
        "unshare": 97, "setns": 268, "mount": 40, "umount2": 39, "pivot_root": 41, "chroot": 51,
        "keyctl": 219, "add_key": 217, "request_key": 218, "bpf": 280, "perf_event_open": 241,
        "userfaultfd": 282, "ptrace": 117, "kexec_load": 104, "kexec_file_load": 294, "init_module": 105,
        "finit_module": 273, "delete_module": 106, "swapon": 224, "swapoff": 225, "reboot": 142, "acct": 89,
        "syslog": 116, "clone": 220, "socket": 198, "socketpair": 199, "shmget": 194, "msgget": 186, "semget": 190,
        "mq_open": 180, "memfd_create": 279}),
}  # fmt: skip


def program(machine: str | None = None, cgroup: bool = True) -> bytes | None:
    """The filter for this machine's architecture (or `machine`), None where there is none; without a
    memory cgroup (`cgroup=False`) it also refuses every socket and `memfd_create`."""
    arch = ARCHES.get(machine or platform.machine())
    if arch is None:
        return None
    audit_arch, nr = arch
    # (code, jump-if-true label, jump-if-false label, k); labels are resolved to relative offsets
    ins: list[tuple] = [(_LD_ABS, None, None, 4), (_JEQ, None, "kill", audit_arch), (_LD_ABS, None, None, 0)]
    if audit_arch == ARCHES["x86_64"][0]:
        ins.append((_JGE, "kill", None, 0x40000000))  # the x32 ABI
    ins += [(_JEQ, "eperm", None, nr[name]) for name in _BLOCKED + ([] if cgroup else ["memfd_create"])]
    sockets = "socket" if cgroup else "eperm"
    ins += [(_JEQ, "enosys", None, nr["clone3"]), (_JEQ, "clone", None, nr["clone"]),
            (_JEQ, sockets, None, nr["socket"]), (_JEQ, sockets, None, nr["socketpair"]), (_RET, None, None, _ALLOW)]
    labels = {"clone": len(ins)}  # the flags, first argument's low 32 bits (little-endian)
    ins += [(_LD_ABS, None, None, 16), (_JSET, "eperm", None, _CLONE_NEW), (_RET, None, None, _ALLOW)]
    labels["socket"] = len(ins)  # the family, an int: the first argument's low 32 bits
    ins += [(_LD_ABS, None, None, 16), (_JEQ, None, "eperm", AF_UNIX), (_RET, None, None, _ALLOW)]
    for name, k in (("eperm", _ERRNO | errno.EPERM), ("enosys", _ERRNO | errno.ENOSYS), ("kill", _KILL)):
        labels[name] = len(ins)
        ins.append((_RET, None, None, k))
    out = b""
    for i, (code, jt, jf, k) in enumerate(ins):
        jt, jf = (0 if j is None else labels[j] - i - 1 for j in (jt, jf))
        out += struct.pack("=HBBI", code, jt, jf, k)
    return out
