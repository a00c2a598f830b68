"""Where a submission runs when it is graded: its own folder, a clean environment, limits.

Grading runs students' code on the instructor's machine. Each submitted notebook runs

- in a scratch folder of its own holding only the notebook (and the runs notebook 04 reads):
  no other student's files, no source edition, no hidden test within reach of a relative path;
- with an environment made from a short list of variables (no tokens, keys or paths the
  instructor's shell holds), ``HOME`` and ``TMPDIR`` inside the scratch folder;
- with a limit on its address space (``--memory-gb``): an allocation past it fails with a
  ``MemoryError`` inside that notebook instead of slowing the machine for everyone;
- with its kernel's sockets and connection file inside its own folder, so no kernel can reach
  another's;
- optionally inside bubblewrap (``--sandbox bwrap``): then the code sees only the system's
  programs and libraries, Python, the ``labutils`` package and its own folder, and no network.

What none of this stops is written in docs/grading.md.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from labutils.course.jupyter_kernels import LocalKernelManager

SANDBOXES = ("none", "bwrap")
# The instructor's variables a kernel still needs: where programs and the lab's package are.
KEPT_VARIABLES = ("PATH", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "PYTHONPATH", "VIRTUAL_ENV")
SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")
# Run by the kernel's own Python before it becomes the kernel: limit, then replace itself.
LIMIT_THEN_EXEC = (
    "import os, resource, sys; limit = int(sys.argv[1]); "
    "resource.setrlimit(resource.RLIMIT_AS, (limit, limit)); os.execvp(sys.argv[2], sys.argv[2:])"
)


@dataclass
class Limits:
    """How a submission's kernel is held in: a time per cell, memory, a sandbox, threads."""

    timeout: int = 120  # seconds per cell
    memory_gb: float = 8.0  # address space; torch alone reserves ~3.5 GB of it on a CPU
    sandbox: str = "none"  # "none" | "bwrap"
    threads: int = 1  # torch threads per kernel, so that --jobs kernels share the cores


def scratch_folder(root: Path, *parts: str) -> Path:
    """A new empty folder under ``root`` named from ``parts`` (made safe for a path)."""
    folder = Path(root).joinpath(*(SAFE_NAME.sub("_", part) or "_" for part in parts))
    shutil.rmtree(folder, ignore_errors=True)
    (folder / "tmp").mkdir(parents=True)
    return folder


def clean_environment(scratch: Path, profile: str, threads: int) -> dict[str, str]:
    """The kernel's environment: a few of the instructor's variables, the rest set here."""
    environment = {name: os.environ[name] for name in KEPT_VARIABLES if name in os.environ}
    threads_text = str(max(1, threads))
    environment.update(
        HOME=str(scratch),
        TMPDIR=str(scratch / "tmp"),
        MPLCONFIGDIR=str(scratch / "tmp"),
        IPYTHONDIR=str(scratch / "tmp" / "ipython"),
        CIFAR10_ROOT=os.environ.get("CIFAR10_ROOT", str(scratch / "data")),
        LABUTILS_PROFILE=profile,
        LABUTILS_PROGRESS="0",
        MPLBACKEND="Agg",
        OMP_NUM_THREADS=threads_text,
        MKL_NUM_THREADS=threads_text,
        PYTHONDONTWRITEBYTECODE="1",
    )
    return environment


def sandbox_problem(sandbox: str) -> str | None:
    """Why ``sandbox`` cannot be used here, or None when it can."""
    if sandbox not in SANDBOXES:
        return f"--sandbox {sandbox}: choose one of {', '.join(SANDBOXES)}."
    if sandbox == "bwrap" and shutil.which("bwrap") is None:
        return (
            "--sandbox bwrap needs bubblewrap, which is not installed: "
            "`sudo apt-get install bubblewrap` (Debian, Ubuntu) or `dnf install bubblewrap`."
        )
    return None


def _read_only_paths() -> list[Path]:
    """What a sandboxed kernel must read: the system, Python, the lab's package."""
    import labutils

    paths = [Path(p) for p in ("/usr", "/etc", "/opt")]
    paths += [Path(sys.prefix), Path(sys.base_prefix), Path(labutils.__file__).parent]
    if "CIFAR10_ROOT" in os.environ:
        paths.append(Path(os.environ["CIFAR10_ROOT"]))
    return [path.resolve() for path in paths if path.exists()]


def bwrap_prefix(scratch: Path, sockets: Path) -> list[str]:
    """bubblewrap's arguments: the read-only system, two folders writable, no network."""
    # --as-pid-1: the kernel exits when it sees itself orphaned (parent pid 1), as it would be
    # under bubblewrap's own init process.
    command = ["bwrap", "--die-with-parent", "--unshare-all", "--new-session", "--as-pid-1"]
    # An empty /tmp first: the folders bound after it stay visible inside it (a clone, its
    # .venv or the scratch folder may well live under /tmp).
    command += ["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp"]
    for path in _read_only_paths():
        command += ["--ro-bind", str(path), str(path)]
    for link in ("bin", "lib", "lib64", "sbin"):  # merged /usr: these are links into /usr
        if Path("/", link).is_symlink():
            command += ["--symlink", os.readlink(Path("/", link)), f"/{link}"]
    for folder in (scratch, sockets):
        command += ["--bind", str(folder), str(folder)]
    command += ["--chdir", str(scratch)]
    return [*command, "--"]


def kernel_prefix(limits: Limits, scratch: Path, sockets: Path) -> list[str]:
    """The words put before the kernel's command: the sandbox, then the memory limit."""
    prefix = bwrap_prefix(scratch, sockets) if limits.sandbox == "bwrap" else []
    if limits.memory_gb and os.name == "posix":
        prefix += [sys.executable, "-c", LIMIT_THEN_EXEC, str(int(limits.memory_gb * 2**30))]
    return prefix


def socket_folder() -> Path:
    """A short new folder for one kernel's sockets (a socket's path has ~100 characters at most)."""
    return Path(tempfile.mkdtemp(prefix="labutils-kernel-"))


class HeldKernelManager(LocalKernelManager):
    """A kernel whose command starts with a prefix, and whose sockets lie in its own folder."""

    def __init__(self, prefix: list[str], folder: Path, **kwargs) -> None:
        kwargs.setdefault("connection_file", str(folder / "kernel.json"))
        if os.name != "nt":
            kwargs.setdefault("ip", str(folder / "ipc"))
        super().__init__(**kwargs)
        self.command_prefix = list(prefix)
        # Interrupt by a message the kernel acts on, not a signal: a signal would reach the
        # sandbox's own process rather than the kernel inside it.
        self.kernel_spec.interrupt_mode = "message"

    def format_kernel_cmd(self, extra_arguments: list[str] | None = None) -> list[str]:
        return [*self.command_prefix, *super().format_kernel_cmd(extra_arguments)]
