"""Run folders: what a training run leaves on disk, and how the comparison finds it again.

    RUN_DIR/<name>/history.json   one dict per epoch (test_* measured on the test set)
    RUN_DIR/<name>/model.pt       the checkpoint: weights, optimizer, schedule, meta
    RUN_DIR/<name>/run.json       what the run was: model, data, settings, and the device,
                                  precision and memory format it trained with
    RUN_DIR/<name>/figures/       the figures the notebook drew

Everything is plain files, so a comparison works on runs made on another machine.
"""

from __future__ import annotations

import json
import os
import platform
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import torch

from labutils import models, sources
from labutils.cifar_format import write_atomically
from labutils.engine import checkpoints
from labutils.engine.checkpoints import CHECKPOINT_FILE, HISTORY_FILE

INFO_FILE = "run.json"


@dataclass
class Run:
    """One finished (or interrupted) training run read back from its folder."""

    name: str
    folder: Path
    history: list[dict]
    info: dict = field(default_factory=dict)

    @property
    def checkpoint(self) -> Path:
        return self.folder / CHECKPOINT_FILE


def save_run_info(folder: str | os.PathLike, info: dict) -> Path:
    """Write ``run.json`` atomically; values must be plain JSON types."""
    path = Path(folder) / INFO_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(path, json.dumps(info, indent=2, sort_keys=True).encode())
    return path


def run_info(
    name: str,
    source: sources.DataSource,
    model: torch.nn.Module,
    settings: dict,
    folder: str | os.PathLike,
    seed: int,
    seconds: float,
) -> dict:
    """What ``run.json`` records about the run trained into ``folder``: enough to compare and
    to repeat it.

    Device, precision and memory format are read from the run's checkpoint: those training
    used, which need not be the ones this machine would choose by default.
    """
    training = checkpoints.training_arguments(folder)
    return {
        "name": name,
        "model": name,
        "data": source.label,
        "data_kind": source.kind,
        "data_verified": source.verified,
        "data_root": str(source.root),
        "parameters": models.count_parameters(model),
        "settings": settings,
        "seed": seed,
        "device": training["device"],
        "precision": training["precision"],
        "memory_format": training.get("memory_format"),  # absent from older checkpoints
        "runtime": training.get("runtime"),
        "compiled": training.get("compiled", False),  # trained through torch.compile
        "world_size": training.get("world_size", 1),  # processes that trained it (torchrun)
        "backend": training.get("backend"),  # nccl or gloo; None in a single process
        "batch_norm": training.get("batch_norm"),  # per-rank or synchronized; None alone
        "wall_seconds": round(seconds, 1),
        "torch": torch.__version__,
        "python": platform.python_version(),
    }


def load_run(folder: str | os.PathLike) -> Run:
    """Read one run folder; a missing ``run.json`` is allowed (runs made by hand)."""
    folder = Path(folder)
    history_path = folder / HISTORY_FILE
    if not history_path.is_file():
        raise FileNotFoundError(f"No {HISTORY_FILE} in {folder}: it is not a training run.")
    history = json.loads(history_path.read_text())
    info_path = folder / INFO_FILE
    info = json.loads(info_path.read_text()) if info_path.is_file() else {}
    return Run(info.get("name", folder.name), folder, history, info)


def default_run_folder() -> Path:
    """``runs/latest`` of the lab's clone; outside one, beside the notebook (the working folder)."""
    clone = sources.repository()
    return (clone if clone is not None else Path.cwd()) / "runs" / "latest"


def find_runs(folder: str | os.PathLike) -> list[Run]:
    """Every run in the folders below ``folder``, sorted by name."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"The run folder {folder} does not exist: train a model first.")
    found = sorted(path.parent for path in folder.rglob(HISTORY_FILE))
    return [load_run(path) for path in found]


def summarize_run(run: Run) -> dict:
    """One row of the comparison table."""
    history = run.history
    train_seconds = sum(epoch["seconds"] for epoch in history)
    speeds = sorted(epoch["images_per_second"] for epoch in history)
    return {
        "model": run.name,
        "data": run.info.get("data", "?"),
        "parameters": run.info.get("parameters"),
        "epochs": len(history),
        "wall time (s)": round(train_seconds, 1),
        "images/s": round(speeds[len(speeds) // 2]) if speeds else None,
        "final test acc": history[-1]["test_acc"] if history else None,
        "best test acc": max(epoch["test_acc"] for epoch in history) if history else None,
    }


def summary_table(runs: list[Run]) -> pd.DataFrame:
    """The comparison table: parameters, epochs, wall time, images/s, final and best accuracy."""
    return pd.DataFrame([summarize_run(run) for run in runs]).set_index("model")
