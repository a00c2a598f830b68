"""``python -m labutils train``: one model trained with fit_one_cycle, under torchrun too."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from labutils import loaders, models, runs, runtime, train
from labutils.course import profiles
from labutils.course.arguments import (
    DATA_AND_TRAINING_ERRORS,
    add_data_arguments,
    add_device_argument,
    add_precision_argument,
)
from labutils.engine import distributed

EXPLAINED_ERRORS = DATA_AND_TRAINING_ERRORS  # printed without a traceback


def resolve_settings(args: argparse.Namespace, synthetic: bool) -> dict:
    """The profile's settings for the model, overridden by any option given on the command line."""
    settings = profiles.training_settings(args.profile, args.model, synthetic=synthetic)
    names = ("epochs", "batch_size", "max_lr", "weight_decay", "grad_clip", "augment")
    for name in (*names, "train_fraction", "compile"):
        if getattr(args, name) is not None:
            settings[name] = getattr(args, name)
    if settings["grad_clip"] == 0:
        settings["grad_clip"] = None  # --grad-clip 0 turns clipping off
    return settings


def command_train(args: argparse.Namespace) -> int:
    # This process only trains: let it reuse the activation memory it frees instead of paying
    # page faults for fresh pages every step. A library call must not decide that for its caller.
    runtime.keep_freed_memory()
    runtime.seed_everything(args.seed)  # the same seed on every rank: the same initial weights
    # Under torchrun: one rank of a data-parallel run; otherwise one process, as always.
    with distributed.process_group(args.device) as device:
        return train_on(args, device)


def train_on(args: argparse.Namespace, device) -> int:
    """The body of ``train``: data, model, fit_one_cycle; rank 0 alone writes run.json."""
    source = profiles.open_data(args.profile, args.data, args.root, args.verify, args.seed)
    distributed.print_main(source.describe())
    settings = resolve_settings(args, source.is_synthetic)
    model = models.build_model(args.model)
    train_loader, test_loader = loaders.make_loaders(
        source,
        settings["batch_size"],
        augment=settings["augment"],
        seed=args.seed,
        device=device,
        channels_last=runtime.use_channels_last(model, device),
        train_fraction=settings["train_fraction"],
    )
    out = args.out or Path("runs") / args.model
    start = time.perf_counter()
    history = train.fit_one_cycle(
        model,
        train_loader,
        test_loader,
        settings["epochs"],
        settings["max_lr"],
        weight_decay=settings["weight_decay"],
        grad_clip=settings["grad_clip"],
        device=device,
        precision=args.precision,
        out_dir=out,
        resume=args.resume,
        meta={"model_name": args.model, "model_kwargs": {}, "data": source.label},
        compile_model=settings["compile"],
    )
    if not distributed.is_main():
        return 0
    info = runs.run_info(
        args.model, source, model, settings, out, args.seed, time.perf_counter() - start
    )
    runs.save_run_info(out, info)
    final = history[-1]
    print(
        f"{args.model}: test accuracy {final['test_acc']:.2%} after {final['epoch']} epochs "
        f"on {source.label}; saved {out / runs.HISTORY_FILE} and {out / runs.CHECKPOINT_FILE}"
    )
    return 0


def add_commands(commands) -> None:
    parser = commands.add_parser(
        "train",
        help="train one model with the one-cycle policy",
        description="Train one model. Unset options take the profile's value for the model. "
        "Data-parallel over N processes: torchrun --standalone --nproc_per_node=N -m labutils "
        "train ... (--batch-size stays the global batch; rank 0 writes the files).",
    )
    parser.add_argument("--model", required=True, choices=models.MODEL_NAMES)
    parser.add_argument(
        "--profile",
        default="auto",
        choices=("auto", *profiles.PROFILE_NAMES),
        help="default settings: smoke | cpu | gpu (auto: gpu if CUDA, else cpu)",
    )
    add_settings_arguments(parser)
    add_data_arguments(parser)
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="run folder for history.json, model.pt, run.json (default: runs/MODEL)",
    )
    parser.add_argument(
        "--resume", action="store_true", help="continue the interrupted run saved in --out"
    )
    parser.add_argument("--seed", type=int, default=0)
    add_device_argument(parser)
    add_precision_argument(parser)
    parser.set_defaults(handler=command_train)


def add_settings_arguments(parser: argparse.ArgumentParser) -> None:
    """The training settings, each one the profile's unless given."""
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--max-lr", type=float)
    parser.add_argument("--weight-decay", type=float)
    parser.add_argument("--grad-clip", type=float, help="clip each gradient value (0: off)")
    parser.add_argument(
        "--train-fraction",
        type=float,
        help="train on this part of the training split, drawn once from --seed (default: 1)",
    )
    parser.add_argument(
        "--augment",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="random crops and flips of the training images",
    )
    parser.add_argument(
        "--compile",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="train through torch.compile (inductor): a minute or more of compiling first; "
        "benchmarks/compile.py says whether it pays on this machine (default: off)",
    )
