"""``benchmarks`` sits beside the installed package, not in it: put the checkout's root on ``sys.path`` so that
``import benchmarks`` works however pytest is started (a bare ``pytest`` does not add the working folder)."""

import sys
from pathlib import Path

ROOT = str(Path(__file__).resolve().parents[2])
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)
