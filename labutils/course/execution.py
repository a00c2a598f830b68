"""Running a notebook to grade it: a fresh kernel, every cell, a time limit on each.

An error in one cell never stops the others (a later exercise still gets its chance). A cell
that runs past the limit is interrupted; a kernel that does not answer the interrupt, or that
dies (a crash, the memory limit), is restarted, and the cell is marked in its outputs with the
error names ``results.TIMED_OUT`` or ``results.KERNEL_DIED`` for the grader to read.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
from pathlib import Path
from queue import Empty
from time import monotonic

import nbformat

from labutils.course import sandbox
from labutils.course.results import KERNEL_DIED, TIMED_OUT

INTERRUPT_GRACE = 10  # seconds a kernel gets to answer after an interrupt before a restart


def marked_error(name: str, message: str) -> nbformat.NotebookNode:
    """An error output the grader writes itself (the kernel wrote none)."""
    return nbformat.v4.new_output("error", ename=name, evalue=message, traceback=[message])


async def _answers(client, grace: float) -> bool:
    """Whether the kernel runs a trivial request within ``grace`` seconds."""
    message_id = client.kc.execute("pass", store_history=False)
    deadline = monotonic() + grace
    while monotonic() < deadline:
        try:
            reply = await client.kc.shell_channel.get_msg(timeout=max(0.1, deadline - monotonic()))
        except Empty:
            return False
        if reply["parent_header"].get("msg_id") == message_id:
            return True
    return False


async def _after_timeout(client, timeout: float) -> tuple[str, bool]:
    """Interrupt the kernel; return the message for the cell and whether it needs replacing."""
    await client.km.interrupt_kernel()
    if await _answers(client, INTERRUPT_GRACE):
        return f"timed out after {timeout:g} s (interrupted)", False
    return (
        f"timed out after {timeout:g} s; the kernel did not stop and was replaced by a new one, "
        f"so what the cells above defined was lost",
        True,
    )


DIED = (
    "the kernel died running this cell (a crash, or past the memory limit); a new one ran the "
    "cells below, so what the cells above defined was lost"
)


async def _run_cells(client, first: int, timeout: float) -> int | None:
    """The code cells from ``first`` on; the index to go on from in a new kernel, or None."""
    from nbclient.exceptions import CellTimeoutError, DeadKernelError

    for index in range(first, len(client.nb.cells)):
        cell = client.nb.cells[index]
        if cell.cell_type != "code":
            continue
        try:
            await client.async_execute_cell(cell, index, execution_count=index + 1)
        except CellTimeoutError:
            message, replace = await _after_timeout(client, timeout)
            cell.outputs.append(marked_error(TIMED_OUT, message))
            if replace:
                return index + 1
        except DeadKernelError:
            cell.outputs.append(marked_error(KERNEL_DIED, DIED))
            return index + 1
    return None


async def _execute_from(notebook, first: int, folder: Path, environment, limits) -> int | None:
    """Run the cells from ``first`` on in a new kernel; see ``_run_cells``."""
    from nbclient import NotebookClient

    sockets = sandbox.socket_folder()
    manager = sandbox.HeldKernelManager(
        sandbox.kernel_prefix(limits, folder, sockets), sockets, kernel_name="python3"
    )
    client = NotebookClient(
        notebook,
        km=manager,
        timeout=limits.timeout,
        kernel_name="python3",
        allow_errors=True,
        interrupt_on_timeout=False,  # interrupted here, where a new kernel can follow
        resources={"metadata": {"path": str(folder)}},
    )
    try:
        async with client.async_setup_kernel(cwd=str(folder), env=environment):
            return await _run_cells(client, first, limits.timeout)
    finally:
        if manager.has_kernel:
            await manager.shutdown_kernel(now=True)
        await manager.cleanup_resources()
        shutil.rmtree(sockets, ignore_errors=True)


async def _execute(notebook, folder: Path, environment: dict, limits: sandbox.Limits) -> None:
    # A timed-out cell's reader of kernel messages outlives its kernel: quiet its last words.
    asyncio.get_running_loop().set_exception_handler(lambda loop, context: None)
    first: int | None = 0
    while first is not None:
        first = await _execute_from(notebook, first, folder, environment, limits)


def parameterized(path: Path, parameters: dict) -> nbformat.NotebookNode:
    """The notebook at ``path`` read as papermill reads it, its parameters cell injected."""
    from papermill.iorw import load_notebook_node
    from papermill.parameterize import parameterize_notebook

    notebook = load_notebook_node(str(path))  # every cell has tags
    if not parameters:
        return notebook
    return parameterize_notebook(notebook, parameters, kernel_name="python3", language="python")


def execute_notebook(
    path: Path, folder: Path, parameters: dict, environment: dict, limits: sandbox.Limits
) -> nbformat.NotebookNode:
    """Run the notebook at ``path`` in ``folder`` under ``limits``; return it executed."""
    notebook = parameterized(path, parameters)
    asyncio.run(_execute(notebook, folder, environment, limits))
    return notebook


def reads_runs(notebook: nbformat.NotebookNode) -> bool:
    """Whether the notebook compares trained runs (notebook 04 does) and so needs some first."""
    return any(
        "runs.find_runs(" in cell.source for cell in notebook.cells if cell.cell_type == "code"
    )


def train_smoke_runs(run_dir: Path, models: tuple[str, ...] = ("mlp", "cnn", "resnet9")) -> None:
    """Small runs of each model on the smoke profile, with the lab's own ``train`` command."""
    for model in models:
        command = [sys.executable, "-m", "labutils", "train", "--model", model]
        command += ["--profile", "smoke", "--out", str(run_dir / model)]
        environment = {**os.environ, "LABUTILS_PROGRESS": "0"}
        result = subprocess.run(command, capture_output=True, text=True, env=environment)
        if result.returncode != 0:
            raise RuntimeError(
                f"Checking the comparison notebook needs small {model} runs first, and training "
                f"them failed:\n{result.stderr[-2000:]}\nRun `{' '.join(command[1:])}` to see "
                f"why; the installation of labutils may be broken (make install)."
            )


def self_check_conditions(
    notebook: nbformat.NotebookNode, run_dir: Path, profile: str = "smoke", timeout: int = 900
) -> tuple[dict, dict[str, str], sandbox.Limits]:
    """The parameters, environment and limits a self-check runs ``notebook`` with.

    ``PROFILE`` is ``profile`` and ``RUN_DIR`` is ``run_dir`` (so the check never touches the
    student's runs), where small runs are trained first if the notebook compares runs and finds
    none there; a time limit per cell, no memory limit.
    """
    if reads_runs(notebook) and not any(Path(run_dir).glob("*/history.json")):
        train_smoke_runs(Path(run_dir))
    parameters = {"PROFILE": profile, "RUN_DIR": str(run_dir)}
    environment = {**os.environ, "LABUTILS_PROFILE": profile, "LABUTILS_PROGRESS": "0"}
    return parameters, environment, sandbox.Limits(timeout=timeout, memory_gb=0)
