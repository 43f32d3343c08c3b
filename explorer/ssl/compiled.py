"""Compiling the training step on a CPU (``torch.compile``) once a run has shown it is long enough.

On two cores a SimCLR step of the small CNN at 32 px (64 pairs, bf16) takes about 86 ms eager and
68 ms compiled, and compiling costs about 30 s; a ten-minute run gains about a sixth more epochs
(benchmarks/README.md, "Compiling the training step"). So a run compiles only after its first
``CHECK_AT_STEP`` steps have shown that at least ``WORTH_S`` seconds of training are left, which
also keeps short runs (tests, small collections) as they were. A step that fails to compile (no
C++ compiler on the machine, an operator Inductor cannot lower) is taken again eagerly, and the run
goes on eager, with a note saying why.

Only methods measured compiled are compiled (``COMPILED_METHODS``), and only in a single process on
a CPU: CUDA and DistributedDataParallel runs were not measured here.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import torch

COMPILE_VARIABLE = "EXPLORER_COMPILE"
"""0: never compile; 1: compile at the check whatever the run's length (to compare, or to test)."""
COMPILED_METHODS = ("simclr",)
CHECK_AT_STEP = 20
WORTH_S = 180.0


class StepCompiler:
    """The function a training step calls for its loss: ``eager`` until :meth:`consider` compiles it."""

    def __init__(self, eager: Callable, method_name: str, device: torch.device, in_team: bool) -> None:
        self.eager = eager
        self.loss = eager
        chosen = os.environ.get(COMPILE_VARIABLE, "").strip()
        allowed = device.type == "cpu" and not in_team and method_name in COMPILED_METHODS and chosen != "0"
        self.forced = chosen == "1"
        self.state = "waiting" if allowed else "off"  # waiting -> trying -> on, or -> off

    @property
    def trying(self) -> bool:
        """The next step is the first through the compiled function (where compiling happens)."""
        return self.state == "trying"

    def due(self, steps_run: int) -> bool:
        """Whether this step is the check (:meth:`consider` must then be called)."""
        return self.state == "waiting" and steps_run >= CHECK_AT_STEP

    def consider(self, seconds_left: float) -> bool:
        """At the check, compile when enough training is left; True when it just did."""
        if not (self.forced or seconds_left >= WORTH_S):
            self.state = "off"
            return False
        self.loss = torch.compile(self.eager)
        self.state = "trying"
        return True

    def worked(self) -> None:
        self.state = "on"

    def failed(self, exc: BaseException) -> str:
        """Go back to eager for good; the note to report."""
        self.loss, self.state = self.eager, "off"
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        return f"compiling the training step failed ({type(exc).__name__}: {first[:200]}); training on without it"
