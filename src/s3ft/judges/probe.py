"""Runs in a probe sandbox when the code judge starts (`Sandbox._probe`): reports, as one JSON line on
standard output, what a program inside can see, so that the host checks the isolation itself rather
than trusting that the bwrap binary provides it. Reads its job (`probe`: a host file's path and a host
listener's port) on standard input, like the runners; the codec (wire.py) is prepended to it."""

import json
import os
import socket

from s3ft.judges.wire import confine, read_job  # sandbox: inline


def status(field: str) -> str | None:
    with open("/proc/self/status") as f:
        return next((line.split(":", 1)[1].strip() for line in f if line.startswith(field + ":")), None)


def interfaces() -> list[str]:
    with open("/proc/net/dev") as f:  # this network namespace's interfaces
        return sorted(line.split(":", 1)[0].strip() for line in f.readlines()[2:])


def connected(port: int) -> bool:
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.settimeout(1)
            s.connect((b"127.0.0.1", port))  # bytes: no codec to import
        return True
    except OSError:
        return False


def main() -> None:
    job = read_job()
    confine(job)
    probe = job["probe"]
    checks = {"pid": os.getpid, "pids": lambda: sorted(p for p in os.listdir("/proc") if p.isdigit()),
              "host_file": lambda: os.path.exists(probe["file"]), "interfaces": interfaces,
              "connected": lambda: connected(probe["port"]), "seccomp": lambda: status("Seccomp"),
              "no_new_privs": lambda: status("NoNewPrivs"), "capabilities": lambda: int(status("CapEff"), 16)}  # fmt: skip
    facts = {}
    for name, check in checks.items():
        try:
            facts[name] = check()
        except Exception as e:
            facts[name] = f"{type(e).__name__}: {e}"[:200]
    os.write(1, json.dumps(facts).encode() + b"\n")


main()
