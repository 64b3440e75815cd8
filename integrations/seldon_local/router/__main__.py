"""`python integrations/seldon_local/router ...`: the front (main.py), as front.py starts it."""

import sys
from pathlib import Path

# Run by its folder's path: the repo root on the path, not this folder (whose module
# names must not shadow the standard library's or a package's).
sys.path[0] = str(Path(__file__).resolve().parents[3])

from integrations.seldon_local.router.main import main  # noqa: E402

main()
