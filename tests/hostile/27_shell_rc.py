"""Appends to shell start-up files: the user's rc files and the system-wide profile."""
import os

hit = 0
host = ("@HOME@/.bashrc", "@HOME@/.profile", "@HOME@/.zshrc", "/etc/profile.d/zz-s3ft.sh", "/etc/bash.bashrc")
for path in (*host, os.path.expanduser("~/.bashrc")):
    try:
        with open(path, "a") as f:
            f.write("\ntouch @CANARY@/rc_ran.txt\n")
        hit += path in host  # its own (sandbox) home is its to write
    except OSError:
        pass


def add(a, b):
    return a + b if hit else 2
