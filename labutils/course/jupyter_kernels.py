"""The kernel manager the batch runner and the self-check start notebooks with.

Jupyter kernels talk to their client over ZeroMQ sockets. Over TCP, without encryption keys,
every kernel prints a warning that anyone on the machine could listen in. Local Unix sockets
(IPC) leave no port open and print nothing; Windows has no such sockets, so it keeps TCP.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

from jupyter_client.manager import AsyncKernelManager
from jupyter_core.paths import jupyter_runtime_dir


class LocalKernelManager(AsyncKernelManager):
    """A kernel manager whose kernels listen on local Unix sockets where the system has them."""

    def __init__(self, **kwargs) -> None:
        if os.name != "nt":
            kwargs.setdefault("transport", "ipc")
            # An absolute socket path: the kernel may start in another folder than its client.
            runtime = Path(jupyter_runtime_dir())
            runtime.mkdir(parents=True, exist_ok=True)
            kwargs.setdefault("ip", str(runtime / f"kernel-{uuid.uuid4().hex[:12]}-ipc"))
        super().__init__(**kwargs)
