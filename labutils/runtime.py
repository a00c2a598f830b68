"""Where and how training runs: device, precision, memory format, seeds, workers, timing.

Every choice is made by looking at the machine, never by guessing, and each can be overridden.
Nothing here runs at import time.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import os
import platform
import random
import sys
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

DEVICE_CHOICES = ("auto", "cpu", "cuda", "cuda:N", "mps")
PRECISION_CHOICES = ("auto", "fp32", "bf16")
BF16_CPU_FLAGS = ("amx_bf16", "avx512_bf16")  # CPU features that make bfloat16 matmuls fast
PROGRESS_ENV = "LABUTILS_PROGRESS"
_FALSE_WORDS = ("0", "false", "no", "off")
PROGRESS_LOG_SECONDS = 30.0  # a bar written to a log file prints a line this often, at most


# --------------------------------------------------------------------------- device


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def available_devices() -> list[str]:
    """The devices this machine offers, e.g. ``['cpu', 'cuda:0']``."""
    found = ["cpu"]
    if torch.cuda.is_available():
        found += [f"cuda:{index}" for index in range(torch.cuda.device_count())]
    if _mps_available():
        found.append("mps")
    return found


def select_device(requested: str | torch.device | None = "auto") -> torch.device:
    """The device to train on: 'auto' picks CUDA, then Apple MPS, then the CPU."""
    name = "auto" if requested is None else str(requested).strip().lower()
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("mps" if _mps_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        device = None
    if device is None or device.type not in ("cpu", "cuda", "mps"):
        raise ValueError(
            f"unknown device {requested!r}: choose one of {', '.join(DEVICE_CHOICES)}."
        )
    found = available_devices()
    wanted = "cuda:0" if str(device) == "cuda" else str(device)
    if device.type == "cpu" or wanted in found:
        return device
    raise ValueError(
        f"device {requested!r} is not available on this machine (found: "
        f"{', '.join(found)}). Pass device='auto' to use the best one found, "
        f"or one of: {', '.join(found)}."
    )


# --------------------------------------------------------------------------- precision


def flags_have_native_bf16(cpuinfo: str) -> bool:
    """True if a /proc/cpuinfo text lists a CPU feature that runs bfloat16 natively."""
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "flags" and any(flag in value.split() for flag in BF16_CPU_FLAGS):
            return True
    return False


@functools.cache
def cpu_has_native_bf16() -> bool:
    """True if this CPU has AMX-BF16 or AVX512-BF16 (read from /proc/cpuinfo; False elsewhere).

    Without them, PyTorch emulates bfloat16 and autocast is many times slower than fp32.
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        return flags_have_native_bf16(Path("/proc/cpuinfo").read_text(errors="replace"))
    except OSError:
        return False


def select_precision(
    device: torch.device | str, requested: str = "auto", cpu_bf16: bool | None = None
) -> torch.dtype | None:
    """The autocast dtype for ``device``: ``torch.bfloat16``, or None for plain fp32.

    'auto' picks bf16 where the hardware runs it natively (a recent GPU, a CPU with AMX or
    AVX512-BF16) and fp32 everywhere else. ``cpu_bf16`` overrides what the CPU is said to have.
    """
    choice = str(requested).strip().lower()
    if choice not in PRECISION_CHOICES:
        raise ValueError(
            f"unknown precision {requested!r}: choose one of {', '.join(PRECISION_CHOICES)}."
        )
    if choice != "auto":
        return torch.bfloat16 if choice == "bf16" else None
    device_type = torch.device(device).type
    if device_type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else None
    if device_type == "cpu":
        native = cpu_has_native_bf16() if cpu_bf16 is None else cpu_bf16
        return torch.bfloat16 if native else None
    return None


def autocast(device: torch.device | str, dtype: torch.dtype | None):
    """A context that runs the forward pass in ``dtype`` (autocast), or does nothing for fp32."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=torch.device(device).type, dtype=dtype)


def uses_convolutions(model: nn.Module) -> bool:
    """True if ``model`` has a 2-D convolution (such models run faster in channels_last)."""
    return any(isinstance(module, nn.Conv2d) for module in model.modules())


def use_channels_last(model: nn.Module, device: torch.device | str) -> bool:
    """True for convolutional models on CPU and CUDA, where channels_last is the faster layout."""
    return uses_convolutions(model) and torch.device(device).type in ("cpu", "cuda")


def memory_format(model: nn.Module, device: torch.device | str) -> torch.memory_format:
    """The layout for ``model``'s weights and its input images: channels_last where it is faster.

    Pass it to ``.to(device, memory_format=...)`` for the model and for every batch.
    """
    return torch.channels_last if use_channels_last(model, device) else torch.preserve_format


# --------------------------------------------------------------------------- memory

_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # mallopt's parameter numbers (glibc malloc.h)
KEEP_FREED_BYTES = 1 << 30  # allocations up to 1 GiB reuse freed memory


@functools.cache
def keep_freed_memory() -> bool:
    """Make this process reuse the memory it frees instead of returning it to the system.

    glibc's malloc gives every block over 32 MiB (one layer's activations for a large batch)
    back to the operating system when it is freed, so the next training step gets fresh pages
    and pays a page fault for each: about a quarter of a step at batch 2000 on 2 cores.
    Raising malloc's mmap and trim thresholds to 1 GiB keeps those blocks for reuse; the
    process then stays at its peak size. Linux with glibc only; returns whether it applied.
    """
    if sys.platform != "linux" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    return bool(
        libc.mallopt(_M_MMAP_THRESHOLD, KEEP_FREED_BYTES)
        and libc.mallopt(_M_TRIM_THRESHOLD, KEEP_FREED_BYTES)
    )


# --------------------------------------------------------------------------- description


def cpu_name() -> str:
    """The CPU's model name, as the operating system reports it."""
    try:
        for line in Path("/proc/cpuinfo").read_text(errors="replace").splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name" and value.strip():
                return value.strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def _device_words(device: torch.device) -> str:
    if device.type == "cuda":
        return f"{device} ({torch.cuda.get_device_name(device)})"
    if device.type == "mps":
        return "mps (Apple GPU)"
    return f"cpu ({cpu_name()}, {torch.get_num_threads()} threads)"


def _precision_words(device: torch.device, dtype: torch.dtype | None) -> str:
    if dtype is not None:
        return f"{str(dtype).removeprefix('torch.').replace('bfloat16', 'bf16')} autocast"
    if device.type == "cpu" and not cpu_has_native_bf16():
        return "fp32 (no native bf16 on this CPU)"
    if device.type == "cuda" and not torch.cuda.is_bf16_supported():
        return "fp32 (no bf16 on this GPU)"
    return "fp32"


def describe_runtime(
    device: torch.device | str, dtype: torch.dtype | None, channels_last: bool
) -> str:
    """One line saying where training runs, in which precision and memory format."""
    device = torch.device(device)
    memory_format = "channels_last" if channels_last else "contiguous"
    return (
        f"device={_device_words(device)} precision={_precision_words(device, dtype)} "
        f"memory_format={memory_format}"
    )


# --------------------------------------------------------------------------- seeds, workers


def seed_everything(seed: int) -> None:
    """Seed Python's ``random``, numpy and torch (every GPU too), so a run can be repeated."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise ValueError(f"seed must be a whole number, got {seed!r}.")
    random.seed(int(seed))
    np.random.seed(int(seed) % 2**32)
    torch.manual_seed(int(seed))  # also seeds every CUDA device
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(int(seed))


def progress_enabled(flag: bool | None = None) -> bool:
    """Whether to draw progress bars: ``flag`` if given, else $LABUTILS_PROGRESS, else True."""
    if flag is not None:
        return bool(flag)
    return os.environ.get(PROGRESS_ENV, "1").strip().lower() not in _FALSE_WORDS


class _LineWriter:
    """A stream for tqdm that writes each redraw of a bar as a line of its own: a log file then
    reads line by line instead of holding one line rewritten with carriage returns."""

    def __init__(self, stream):
        self.stream = stream
        self.last = ""

    def write(self, text: str) -> None:
        line = text.replace("\r", "").replace("\x1b[A", "").rstrip()
        if line and line != self.last:
            self.stream.write(line + "\n")
            self.last = line

    def flush(self) -> None:
        self.stream.flush()

    def __getattr__(self, name):
        return getattr(self.stream, name)


def _redraws_in_place(stream) -> bool:
    """True for a terminal and for a Jupyter kernel's output (which draws bars as widgets)."""
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty()) or type(stream).__module__.startswith("ipykernel")


def progress_bar(iterable=None, *, enabled: bool | None = None, **options) -> tqdm:
    """A tqdm bar (``options`` are tqdm's), shown when ``progress_enabled(enabled)``.

    In a terminal or a notebook it redraws itself in place; written to a log file or a pipe,
    it prints a line at most every PROGRESS_LOG_SECONDS instead.
    """
    options.setdefault("disable", not progress_enabled(enabled))
    stream = options.get("file") or sys.stderr
    if not _redraws_in_place(stream):
        options["file"] = _LineWriter(stream)
        for interval in ("mininterval", "maxinterval"):
            options[interval] = max(options.get(interval, 0.0), PROGRESS_LOG_SECONDS)
    return tqdm(iterable, **options)


# --------------------------------------------------------------------------- timing


def synchronize(device: torch.device | str) -> None:
    """Wait for queued GPU work, so a clock read afterwards measures it."""
    device_type = torch.device(device).type
    if device_type == "cuda":
        torch.cuda.synchronize(device)
    elif device_type == "mps":
        torch.mps.synchronize()


def format_duration(seconds: float) -> str:
    """A duration as a person reads it: '0.42 s', '38 s', '14 min', '1.6 h'."""
    if seconds < 90:
        return f"{seconds:.2g} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
