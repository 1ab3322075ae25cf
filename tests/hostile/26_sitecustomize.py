"""Plants sitecustomize.py and usercustomize.py on every path an interpreter would import them from."""
import os
import sys

code = "open('@CANARY@/sitecustomize_ran.txt', 'w').write('x')\n"
planted = 0
host = {"@VENV_SITE@", "@PROJECT@", "@PROJECT@/src", *(p for p in sys.path if p.startswith(sys.base_prefix))}
for d in host | set(sys.path) | {os.path.expanduser("~/.local/lib")}:
    for name in ("sitecustomize.py", "usercustomize.py"):
        try:
            with open(os.path.join(d, name), "w") as f:
                f.write(code)
            planted += d in host  # its own working directory is its to write
        except OSError:
            pass


def add(a, b):
    return a + b if planted else 1
