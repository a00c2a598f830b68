"""Ctrl-C while training: held back while the weights change, and decided together by all ranks.

Two rules keep a checkpoint trustworthy. Inside ``deferred()`` a Ctrl-C waits until the block
ends, so the weights, the optimizer, the schedule and the counters change together or not at
all. Under torchrun, ``decided_together()`` turns Ctrl-C into a flag that every step's sum over
the ranks carries (``received``): a rank stopping on its own would leave the others waiting in a
collective, so all ranks stop at the same step. A single process keeps Ctrl-C as it is.
"""

from __future__ import annotations

import contextlib
import signal
import threading

import torch.distributed as dist

_received: list[int] = []  # Ctrl-C seen by this rank inside decided_together, not yet acted on


@contextlib.contextmanager
def _sigint_recorded(record: list[int]):
    """Append to ``record`` on Ctrl-C for the block, then restore the previous handler."""
    previous = signal.signal(signal.SIGINT, lambda signum, frame: record.append(signum))
    try:
        yield previous
    finally:
        signal.signal(signal.SIGINT, previous)


def _can_catch() -> bool:
    # Signal handlers can be set from the main thread only, and only where Python set one.
    return (
        threading.current_thread() is threading.main_thread()
        and signal.getsignal(signal.SIGINT) is not None
    )


@contextlib.contextmanager
def deferred():
    """Hold Ctrl-C back until the block ends, then act on it as the previous handler would."""
    if not _can_catch():
        yield
        return
    received: list[int] = []
    with _sigint_recorded(received) as previous:
        yield
    if received and callable(previous):
        previous(signal.SIGINT, None)
    elif received and previous != signal.SIG_IGN:
        raise KeyboardInterrupt


@contextlib.contextmanager
def decided_together():
    """Under torchrun, Ctrl-C raises a flag for ``received``; still up at the end, it is raised."""
    if not (dist.is_available() and dist.is_initialized()) or not _can_catch():
        yield
        return
    _received.clear()
    with _sigint_recorded(_received):
        yield
    if _received:
        _received.clear()
        raise KeyboardInterrupt


def received() -> bool:
    """True once this rank has seen Ctrl-C inside ``decided_together``."""
    return bool(_received)
