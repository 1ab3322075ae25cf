"""Plants .pth files (run at every interpreter start-up) in every site-packages it can name."""
import glob
import os
import site
import sys

line = "import os; open('@CANARY@/pth_ran.txt', 'w').write('pth')\n"
host = {"@VENV_SITE@", *glob.glob("@VENV_SITE@"), *(p for p in sys.path if p.startswith(sys.base_prefix))}
try:
    host |= set(site.getsitepackages())
    others = {site.getusersitepackages(), *sys.path}
except BaseException:
    others = set(sys.path)
planted = 0
for d in host | others:
    try:
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "zzz_s3ft_hostile.pth"), "w") as f:
            f.write(line)
        planted += d in host  # writing into its own working directory is allowed
    except OSError:
        pass


def add(a, b):
    return a + b if planted else 0
