"""Choosing the torch device (``auto`` prefers CUDA, then Apple MPS, then the CPU) and the precision training runs in."""

from __future__ import annotations

import functools
import os

import torch

DEVICE_NAMES = ("auto", "cuda", "mps", "cpu")


def _mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


def pick_device(name: str = "auto") -> torch.device:
    """The device called ``name`` (``auto``, ``cuda``, ``cuda:N``, ``mps`` or ``cpu``).

    Raises ValueError for an unknown name or for a device this machine does not have.
    """
    key = str(name).strip().lower()
    if key == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    if key == "cpu":
        return torch.device("cpu")
    if key == "cuda" or key.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise ValueError(
                f"device {name!r} asked for, but torch sees no CUDA GPU on this machine; use 'auto' or 'cpu'"
            )
        device = torch.device(key)
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ValueError(f"device {name!r}: this machine has only {torch.cuda.device_count()} CUDA device(s)")
        return device
    if key == "mps":
        if not _mps_available():
            raise ValueError("device 'mps' asked for, but Apple MPS is not available here; use 'auto' or 'cpu'")
        return torch.device("mps")
    raise ValueError(f"unknown device {name!r}; choose one of {', '.join(DEVICE_NAMES)} (or cuda:N)")


def is_out_of_memory(exc: BaseException) -> bool:
    """True for a device running out of memory (CUDA's OutOfMemoryError, MPS's RuntimeError)."""
    if isinstance(exc, torch.OutOfMemoryError):
        return True
    return isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()


def free_device_memory(device: torch.device) -> None:
    """Give cached blocks back after an out-of-memory error, so a smaller retry can fit."""
    if device.type == "cuda":
        torch.cuda.empty_cache()
    elif device.type == "mps" and hasattr(torch, "mps"):
        torch.mps.empty_cache()


_CPU_FLAGS = "/proc/cpuinfo"
NATIVE_BF16_FLAGS = ("amx_bf16", "avx512_bf16")


def cpu_has_native_bf16(cpuinfo: str | None = None) -> bool:
    """Whether this CPU multiplies bfloat16 natively (Intel AMX or AVX512-BF16), as read from
    ``/proc/cpuinfo`` (or the text ``cpuinfo``); False where that cannot be read (not Linux).

    Training on such a CPU runs under bf16 autocast: the default path trained on 1.8x the images a
    second in its 10 minutes, and the cluttered colour digits' encoder gained 0.07 kNN
    (benchmarks/README.md, "Training in bf16 on the CPU"). Without native support oneDNN emulates
    bf16, slower than float32, so other CPUs keep float32."""
    if cpuinfo is None:
        try:
            with open(_CPU_FLAGS, encoding="utf-8", errors="replace") as f:
                cpuinfo = f.read(1 << 20)
        except OSError:
            return False
    for line in cpuinfo.splitlines():
        if line.startswith("flags"):
            return any(flag in NATIVE_BF16_FLAGS for flag in line.split(":", 1)[-1].split())
    return False


def training_autocast(device: torch.device):
    """The autocast dtype a training step on ``device`` runs under, or None for float32: bf16 on
    CUDA where supported (float16 with a gradient scaler otherwise), bf16 on a CPU that has it
    natively (:func:`cpu_has_native_bf16`)."""
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if device.type == "cpu" and _native_bf16():
        return torch.bfloat16
    return None


CPU_BF16_VARIABLE = "EXPLORER_CPU_BF16"
"""Set to 0 to train in float32 on any CPU (bit-for-bit reruns, or to compare), 1 to force bf16."""


def _native_bf16() -> bool:
    chosen = os.environ.get(CPU_BF16_VARIABLE, "").strip()
    if chosen in ("0", "1"):
        return chosen == "1"
    return _this_cpu_has_native_bf16()


@functools.cache
def _this_cpu_has_native_bf16() -> bool:
    return cpu_has_native_bf16()
