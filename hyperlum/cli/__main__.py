import sys

from hyperlum.cli import main

sys.exit(main())
