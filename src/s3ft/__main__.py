import sys

from s3ft.cli import main

if __name__ == "__main__":  # a spawned child process (s3ft.backends.process) imports this module too
    sys.exit(main())
