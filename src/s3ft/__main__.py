import sys

from s3ft.cli import main

sys.exit(main())
