"""Time to accuracy: the minutes the report's recipe and the lab's need to reach the same test
accuracy, per model, on this machine.

Images per second flatter a recipe that trains fast and learns little. This script trains each
model twice on the same data, machine, precision and seed, in the lab's engine: with the
report's settings (``profiles.REPORT_SETTINGS``: 20 epochs of batch 64 at max_lr 0.01, no
augmentation, no clipping) and with the lab's (the ``cpu`` profile's settings, or those a run
folder of the series recorded, read with ``--lab RUN_FOLDER`` instead of training again).
The target is the lower of the two best test accuracies: both recipes reach it. Each column
gives the training minutes (test passes included) until the first epoch at or above it; the
last two give each whole run (best and last accuracy, epochs, minutes), since a recipe that
diverges after a good first epoch sets a low target and reaches it first.

    python benchmarks/time_to_accuracy.py --data cifar10 --root data --markdown
    python benchmarks/time_to_accuracy.py --data cifar10 --lab runs/latest --models mlp cnn
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from pathlib import Path

from labutils import loaders, models, runtime, sources, train
from labutils.course import profiles, runner

SEED = 0


class TargetReached(Exception):
    """Raised after the epoch at which a run reached the accuracy it was chasing."""


def train_history(model_name: str, settings: dict, source, stop_at: float | None) -> list[dict]:
    """Train ``model_name`` with ``settings``; stop after the first epoch at ``stop_at`` or more."""
    runtime.seed_everything(SEED)
    model = models.build_model(model_name)
    device = runtime.select_device("auto")
    train_loader, test_loader = loaders.make_loaders(
        source,
        settings["batch_size"],
        augment=settings["augment"],
        seed=SEED,
        device=device,
        channels_last=runtime.use_channels_last(model, device),
        train_fraction=settings.get("train_fraction", 1.0),
    )
    seen = []

    def watch(history):
        seen[:] = history
        if stop_at is not None and history[-1]["test_acc"] >= stop_at:
            raise TargetReached

    with contextlib.suppress(TargetReached):
        train.fit_one_cycle(
            model,
            train_loader,
            test_loader,
            settings["epochs"],
            settings["max_lr"],
            weight_decay=settings["weight_decay"],
            grad_clip=settings["grad_clip"],
            device=device,
            progress=False,
            on_epoch_end=watch,
            compile_model=settings["compile"],
        )
    return seen


def minutes_to(history: list[dict], target: float) -> tuple[int, float] | None:
    """(epoch, minutes) of the first epoch at or above ``target``; None if never."""
    elapsed = 0.0
    for record in history:
        elapsed += record["seconds"]
        if record["test_acc"] >= target - 1e-9:
            return record["epoch"], elapsed / 60
    return None


def compare(model_name: str, source, lab_folder: Path | None) -> dict:
    if lab_folder is not None:
        run = lab_folder / model_name
        lab = json.loads((run / "history.json").read_text())
        lab_settings = json.loads((run / "run.json").read_text())["settings"]
    else:
        lab_settings = profiles.training_settings("cpu", model_name, source.is_synthetic)
        lab = train_history(model_name, lab_settings, source, None)
    lab_best = max(record["test_acc"] for record in lab)
    print(f"  {model_name}: lab recipe best {lab_best:.2%}; training the report's ...", flush=True)
    # The report's run may stop as soon as it reaches the lab's best: the target is then known.
    report = train_history(model_name, dict(profiles.REPORT_SETTINGS), source, stop_at=lab_best)
    target = min(lab_best, max(record["test_acc"] for record in report))
    report_epoch, report_minutes = minutes_to(report, target)
    lab_epoch, lab_minutes = minutes_to(lab, target)
    return {
        "model": model_name,
        "target": target,
        "report": f"{report_minutes:.1f} min (epoch {report_epoch} of 20)",
        "lab": f"{lab_minutes:.1f} min (epoch {lab_epoch} of {lab_settings['epochs']})",
        "speed-up": report_minutes / lab_minutes,
        "report_minutes": report_minutes,
        "lab_minutes": lab_minutes,
        "report_run": whole_run(report),
        "lab_run": whole_run(lab),
    }


def whole_run(history: list[dict]) -> str:
    """Best and last test accuracy of a run, and its minutes: what a shared target can hide
    (a recipe that diverges after its first epoch reaches a low target first)."""
    best = max(record["test_acc"] for record in history)
    minutes = sum(record["seconds"] for record in history) / 60
    last = history[-1]["test_acc"]
    return f"best {best:.1%}, last {last:.1%} ({len(history)} epochs, {minutes:.1f} min)"


def format_table(rows: list[dict], markdown: bool) -> str:
    header = [
        "model",
        "same test accuracy",
        "report's recipe",
        "lab's recipe",
        "lab faster by",
        "report's whole run",
        "lab's whole run",
    ]
    cells = [
        [
            row["model"],
            f"{row['target']:.1%}",
            row["report"],
            row["lab"],
            f"{row['speed-up']:.1f}x",
            row["report_run"],
            row["lab_run"],
        ]
        for row in rows
    ]
    if markdown:
        return runner.markdown_table(header, cells)
    widths = [max(len(text) for text in column) for column in zip(header, *cells)]
    return "\n".join(
        "  ".join(text.ljust(width) for text, width in zip(row, widths)) for row in [header, *cells]
    )


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", choices=sources.SOURCES, default="auto")
    parser.add_argument("--root", default=None, help="data folder (default: $CIFAR10_ROOT)")
    parser.add_argument("--no-verify", action="store_true", help="accept an unofficial copy")
    parser.add_argument(
        "--models", nargs="+", choices=models.MODEL_NAMES, default=list(models.MODEL_NAMES)
    )
    parser.add_argument(
        "--lab",
        type=Path,
        default=None,
        help="a run folder of the series (python -m labutils run): its models' histories are "
        "the lab's side, trained on this machine (default: train the cpu profile's settings)",
    )
    parser.add_argument("--markdown", action="store_true")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    runtime.keep_freed_memory()  # as the lab's training commands do
    source = sources.get_data_source(args.data, args.root, verify=not args.no_verify)
    print(source.describe(), flush=True)
    rows = [compare(name, source, args.lab) for name in args.models]
    print()
    print(format_table(rows, args.markdown))
    print()
    device = runtime.select_device("auto")
    print(
        f"Machine: {runtime.describe_runtime(device, runtime.select_precision(device), False)}; "
        f"{source.label}; seed {SEED}; minutes of training and test passes, from each history."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
