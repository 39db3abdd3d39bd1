import sys

from hyperlum.cli import main

if __name__ == "__main__":  # worker processes of a local dask cluster import this module
    sys.exit(main())
