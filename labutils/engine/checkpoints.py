"""Checkpoints: what a training run saves, how it is read back, and how a run resumes exactly.

    RUN_FOLDER/model.pt       weights, optimizer, schedule, progress, random state, meta
    RUN_FOLDER/history.json   one dict per epoch: the list ``fit_one_cycle`` returns

A checkpoint holds tensors and plain values only, so ``torch.load(weights_only=True)`` reads it
without running pickled code. Both files are written whole or not at all
(``data.write_atomically``): an interruption never leaves half a checkpoint.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from labutils import models
from labutils.cifar_format import write_atomically
from labutils.engine import distributed, interrupts

CHECKPOINT_FILE = "model.pt"
HISTORY_FILE = "history.json"
# Training arguments that may differ when resuming: they change speed, not the schedule (the
# global batch and its order do not depend on how many processes share it).
RESUMABLE_CHANGES = (
    "device",
    "precision",
    "memory_format",
    "runtime",
    "world_size",
    "backend",
    "batch_norm",
    "distributed",
)


@dataclass
class Progress:
    """Where training stands: everything a checkpoint needs to continue exactly from here."""

    epoch: int = 0  # epochs completed
    step: int = 0  # batches completed in the epoch under way
    loss_sum: float = 0.0  # of batch loss x batch size, over those batches
    correct: int = 0
    seen: int = 0
    train_seconds: float = 0.0
    last_lr: float = 0.0
    rng_state: dict = field(default_factory=dict)  # after the last completed batch
    epoch_rng_state: dict = field(default_factory=dict)  # before the epoch drew its first batch
    history: list = field(default_factory=list)
    _lap_start: float = field(default=0.0, repr=False)  # when the last batch ended

    def partial_epoch(self) -> dict:
        return {
            "loss_sum": self.loss_sum,
            "correct": self.correct,
            "seen": self.seen,
            "train_seconds": self.train_seconds,
            "last_lr": self.last_lr,
        }

    @classmethod
    def start(cls, device: torch.device) -> Progress:
        """Progress at the start of a fresh run."""
        return cls(rng_state=rng_state(device))

    def remaining_batches(self, loader, device: torch.device):
        """An iterator over the batches of the epoch under way not trained on yet.

        All of them, unless resuming mid-epoch: then the batches already trained on are drawn
        and discarded (``resume`` put back the random state the epoch began with), so that the
        data order and augmentations that follow are the ones an uninterrupted run would see.
        """
        if self.step == 0:
            self.epoch_rng_state = self.rng_state = rng_state(device)
        if hasattr(loader, "set_epoch"):
            loader.set_epoch(self.epoch)
        batches = iter(loader)
        for _ in range(self.step):
            next(batches)
        if self.step:
            set_rng_state(self.rng_state, device)
        self._lap_start = time.perf_counter()
        return batches

    def add_batch(self, batch, lr: float, device: torch.device) -> None:
        """Count one trained global batch (``distributed.BatchTotals``) and its seconds."""
        now = time.perf_counter()
        self.train_seconds += now - self._lap_start
        self._lap_start = now
        self.last_lr = lr
        self.step += 1
        self.loss_sum += batch.loss_sum
        self.correct += batch.correct
        self.seen += batch.images
        self.rng_state = rng_state(device)

    def running_scores(self) -> dict[str, str]:
        """The epoch's loss and accuracy so far, for a progress bar."""
        seen = max(self.seen, 1)
        return {"loss": f"{self.loss_sum / seen:.4f}", "acc": f"{self.correct / seen:.4f}"}

    def end_epoch(self, scores: dict[str, float], device: torch.device) -> None:
        """Record the epoch with its test ``scores`` in the history, and start the next one."""
        if self.seen == 0:
            raise ValueError("train_loader gave no batches, although it has a length above 0.")
        record = {
            "epoch": self.epoch + 1,
            "lr": float(self.last_lr),
            "train_loss": self.loss_sum / self.seen,
            "train_acc": self.correct / self.seen,
            "test_loss": scores["loss"],
            "test_acc": scores["accuracy"],
            "seconds": self.train_seconds + time.perf_counter() - self._lap_start,
            "images_per_second": self.seen / max(self.train_seconds, 1e-9),
        }
        with interrupts.deferred():
            self.history.append(record)
            self.epoch += 1
            self.step, self.loss_sum, self.correct, self.seen = 0, 0.0, 0, 0
            self.train_seconds = 0.0
            self.rng_state = rng_state(device)


def rng_state(device: torch.device) -> dict:
    """torch's random state, and the GPU's when training on one: what dropout draws next."""
    state = {"torch": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def set_rng_state(state: dict, device: torch.device) -> None:
    """Put back a random state taken by ``rng_state``."""
    torch.set_rng_state(state["torch"])
    if device.type == "cuda" and state.get("cuda") is not None:
        torch.cuda.set_rng_state(state["cuda"], device)


def check_plain(value, where: str) -> None:
    """Refuse anything ``torch.load(weights_only=True)`` could not read back."""
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise ValueError(f"{where} keys must be strings, got {key!r}.")
            check_plain(item, f"{where}[{key!r}]")
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            check_plain(item, f"{where}[{index}]")
    elif value is not None and not isinstance(value, (str, int, float, bool)):
        raise ValueError(
            f"{where} must hold only str, int, float, bool, None, lists and dicts; "
            f"got {type(value).__name__} {value!r}."
        )


# --------------------------------------------------------------------------- load


def load_checkpoint(path: str | os.PathLike) -> dict:
    """Read a checkpoint written by ``fit_one_cycle`` (tensors and plain values only)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"no checkpoint at {str(path)!r}: train with out_dir=... first, or check the path."
        )
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise ValueError(f"{str(path)!r} is not a readable checkpoint ({error}).") from None
    if not isinstance(checkpoint, dict) or not {"model", "meta", "history"} <= checkpoint.keys():
        hint = (
            " It looks like a bare state_dict: load it with model.load_state_dict(...)."
            if isinstance(checkpoint, dict)
            else ""
        )
        raise ValueError(f"{str(path)!r} is not a checkpoint written by fit_one_cycle.{hint}")
    return checkpoint


def load_trained_model(path: str | os.PathLike) -> nn.Module:
    """Rebuild the model a checkpoint was trained as, load its weights, switch to eval mode."""
    checkpoint = load_checkpoint(path)
    meta = checkpoint["meta"]
    if "model_name" not in meta:
        raise ValueError(
            f"the checkpoint {str(path)!r} does not say which model it holds "
            f"(meta has no 'model_name'): build the model yourself and call "
            f"model.load_state_dict(load_checkpoint(path)['model'])."
        )
    model = models.build_model(meta["model_name"], **meta.get("model_kwargs", {}))
    model.load_state_dict(checkpoint["model"])
    return model.eval()


def _check_same_run(saved: dict, current: dict, path: Path) -> None:
    names = (saved.keys() | current.keys()) - {"training"}
    pairs = [(name, saved.get(name), current.get(name)) for name in sorted(names)]
    saved_args, current_args = saved.get("training", {}), current["training"]
    pairs += [
        (name, saved_args.get(name), current_args.get(name))
        for name in sorted(current_args.keys() - set(RESUMABLE_CHANGES))
    ]
    differences = [
        f"{name}: checkpoint has {old!r}, this call has {new!r}"
        for name, old, new in pairs
        if old != new
    ]
    if differences:
        raise ValueError(
            f"cannot resume from {str(path)!r}: it was made by a different run ("
            + "; ".join(differences)
            + "). The one-cycle schedule depends on these, "
            "so pass the same values, or start afresh with resume=False or another "
            "out_dir."
        )


def training_arguments(folder: str | os.PathLike) -> dict:
    """The training arguments a run's checkpoint holds: epochs, max_lr, ..., device, precision.

    They are what ``fit_one_cycle`` actually used, not what this machine would pick now.
    """
    return load_checkpoint(Path(folder) / CHECKPOINT_FILE)["meta"]["training"]


# --------------------------------------------------------------------------- the run's folder


def prepare_folder(out_dir: str | os.PathLike | None, resume: bool) -> Path | None:
    """``out_dir`` as a folder that exists and can be written to (None: keep no checkpoints)."""
    if out_dir is None:
        if resume:
            raise ValueError("resume=True needs out_dir: the folder holding the checkpoint.")
        return None
    path = Path(out_dir)
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as error:
        raise ValueError(
            f"out_dir {str(path)!r} cannot be created or written to ({error}); "
            f"choose another folder."
        ) from None
    return path


class RunFolder:
    """Where a training run keeps its checkpoint: saved after each epoch and on Ctrl-C.

    Rank 0 alone writes. Without a folder (``None``) nothing is saved, and Ctrl-C says so.
    """

    def __init__(self, folder: Path | None, model, optimizer, scheduler, meta, training: dict):
        """``meta``: the caller's plain values; ``training``: the arguments and runtime."""
        self.folder, self.model = folder, model
        self.meta = {**copy.deepcopy(meta or {}), "training": training}
        self.optimizer, self.scheduler = optimizer, scheduler

    def save(self, progress: Progress) -> None:
        """Write ``model.pt`` and ``history.json`` as they stand, each atomically (rank 0, with a
        folder only)."""
        if self.folder is None or not distributed.is_main():
            return
        checkpoint = {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "epoch": progress.epoch,
            "step": progress.step,
            "partial_epoch": progress.partial_epoch(),
            "torch_rng_state": progress.rng_state["torch"],
            "cuda_rng_state": progress.rng_state.get("cuda"),
            "epoch_start_rng_state": progress.epoch_rng_state,
            "history": progress.history,
            "meta": self.meta,
        }
        buffer = io.BytesIO()
        torch.save(checkpoint, buffer)
        write_atomically(self.folder / CHECKPOINT_FILE, buffer.getvalue())
        history = json.dumps(progress.history, indent=2).encode()
        write_atomically(self.folder / HISTORY_FILE, history)

    def resume(self, device: torch.device) -> Progress:
        """Load the checkpoint into the model, optimizer and schedule; say where it stood.

        A checkpoint made with other training arguments is refused. The random state is put
        back too: mid-epoch, the one from where that epoch began, so that the loop can redraw
        the batches already trained on and get exactly what it drew the first time.
        """
        path = self.folder / CHECKPOINT_FILE
        if not path.is_file():
            raise FileNotFoundError(
                f"resume=True, but there is no checkpoint at {str(path)!r}: "
                f"start the run without resume=True, or check out_dir."
            )
        checkpoint = load_checkpoint(path)
        _check_same_run(checkpoint["meta"], self.meta, path)
        self.model.load_state_dict(checkpoint["model"])
        self.optimizer.load_state_dict(checkpoint["optimizer"])
        self.scheduler.load_state_dict(checkpoint["scheduler"])
        progress = Progress(
            epoch=checkpoint["epoch"],
            step=checkpoint["step"],
            **checkpoint["partial_epoch"],
            history=checkpoint["history"],
            rng_state={
                "torch": checkpoint["torch_rng_state"],
                "cuda": checkpoint["cuda_rng_state"],
            },
            epoch_rng_state=checkpoint["epoch_start_rng_state"],
        )
        set_rng_state(progress.epoch_rng_state if progress.step else progress.rng_state, device)
        distributed.print_main(
            f"Resuming from {self.folder / CHECKPOINT_FILE}: {progress.epoch} of "
            f"{self.meta['training']['epochs']} epochs done, {progress.step} of "
            f"{self.meta['training']['steps_per_epoch']} batches into the next."
        )
        return progress

    def kept_checkpoint_note(self, progress: Progress) -> str:
        """A sentence for an error: the last good checkpoint was left as it was."""
        if self.folder is None or progress.epoch == 0:
            return ""
        return (
            f" The checkpoint of epoch {progress.epoch} in {str(self.folder)!r} was kept as it was."
        )

    @contextlib.contextmanager
    def saved_on_interrupt(self, progress: Progress, epochs: int):
        """On Ctrl-C in the block: save where training stands, say how to resume, re-raise."""
        try:
            yield
        except KeyboardInterrupt:
            if distributed.is_main():  # rank 0 saves once for all; the others just stop
                with interrupts.deferred():  # a second Ctrl-C (torchrun sends one) waits
                    self._report_interrupt(progress, epochs)
            raise

    def _report_interrupt(self, progress: Progress, epochs: int) -> None:
        where = (
            f"epoch {progress.epoch + 1} of {epochs}, after {progress.step} of "
            f"{self.meta['training']['steps_per_epoch']} batches"
        )
        if self.folder is None:
            print(f"\nInterrupted at {where}. Nothing was saved: pass out_dir=... to keep "
                  f"checkpoints.", flush=True)  # fmt: skip
            return
        self.save(progress)
        print(
            f"\nInterrupted at {where}. Saved the checkpoint to "
            f"{str(self.folder / CHECKPOINT_FILE)!r} and the history so far to "
            f"{str(self.folder / HISTORY_FILE)!r}. To continue exactly from here, call "
            f"fit_one_cycle again with the same arguments and resume=True (on the command "
            f"line: the same command with --resume).",
            flush=True,
        )
