"""`python scripts/bench ...` (from anywhere; also `python -m bench` with scripts/ on PYTHONPATH)."""

import sys
from pathlib import Path

if not __package__:  # run as a directory: import the files as the package `bench`, not as top-level modules
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

from bench.cli import main  # noqa: E402

sys.exit(main())
