"""Training in bf16 on a CPU that has it natively, against float32, on the default path.

For each suite collection given, the default command-line path (``scan``, ``train --max-minutes
M``, ``embed``, ``map``) runs twice on fresh copies of the same images, one after the other in
this run: with ``EXPLORER_CPU_BF16=0`` (float32, what every CPU did before) and with the
default (bf16 autocast where the CPU multiplies bf16 natively: Intel AMX or AVX512-BF16). Reported
per run: epochs done in the budget, training images a second, kNN@20 of the encoder against the
true labels (``explorer evaluate``) and pseudo-label accuracy from 1 / 3 / 10 random seeds a class
(mean of ``--draws`` draws).

Run: ``nice python benchmarks/cpu_bf16.py --collections handwriting mnist [--minutes 10]``
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.collections import SUITE, make  # noqa: E402
from benchmarks.labelling_effort import path_figures, report_row  # noqa: E402
from explorer.ssl.devices import CPU_BF16_VARIABLE, cpu_has_native_bf16  # noqa: E402


def one_run(made, folder: Path, minutes: float, draws: int, bf16: bool) -> dict:
    environment = {CPU_BF16_VARIABLE: "1" if bf16 else "0"}
    figures = path_figures(made.images, made.truth, folder, minutes, draws, environment=environment)
    return {"precision": "bf16" if bf16 else "float32", **figures}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--collections", nargs="+", default=["handwriting"], choices=SUITE)
    parser.add_argument("--minutes", type=float, default=10.0, help="`explorer train --max-minutes`")
    parser.add_argument("--draws", type=int, default=10)
    parser.add_argument("--order", choices=("float32-first", "bf16-first"), default="float32-first")
    parser.add_argument("--out", type=Path, default=None, help="JSON lines with every figure")
    args = parser.parse_args()
    if not cpu_has_native_bf16():
        print("this CPU has no native bf16 (AMX or AVX512-BF16): both runs would be float32")
        return
    order = (False, True) if args.order == "float32-first" else (True, False)
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.collections:
            made = make(name, Path(tmp) / "made")
            for bf16 in order:
                row = {
                    "collection": name,
                    **one_run(made, Path(tmp) / f"{name}-{int(bf16)}", args.minutes, args.draws, bf16),
                }
                report_row(row, args.out)


if __name__ == "__main__":
    main()
