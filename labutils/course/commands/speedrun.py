"""``python -m labutils speedrun``: the speed track's recipe for several seeds."""

from __future__ import annotations

import argparse
import statistics
import sys

from labutils import runtime, sources
from labutils.checks import check_int
from labutils.course.arguments import (
    DATA_AND_TRAINING_ERRORS,
    add_data_arguments,
    add_device_argument,
    add_precision_argument,
)
from labutils.speedrun import batches, recipes, trainer

EXPLAINED_ERRORS = DATA_AND_TRAINING_ERRORS  # printed without a traceback


def format_result(result: dict) -> str:
    """One line for one seed: accuracy with and without TTA, and where the seconds went."""
    return (
        f"seed {result['seed']}: test_acc {result['test_acc']:.4f} "
        f"(without TTA {result['test_acc_no_tta']:.4f})  {result['seconds']:.1f}s "
        f"(whitening {result['seconds_whiten']:.1f}s, training {result['seconds_train']:.1f}s,"
        f" TTA evaluation {result['seconds_tta']:.1f}s)"
    )


PUBLISHED_RECIPE = "airbench94_muon"  # the speed track's peer, exactly as published


def run_recipe(args: argparse.Namespace, name: str, speed_data, device, seed: int) -> dict:
    """One seed of recipe ``name`` with the command's options; prints its line."""
    result = trainer.run_speedrun(
        speed_data,
        epochs=args.epochs,
        batch_size=args.batch_size,
        tta_level=args.tta,
        seed=seed,
        device=device,
        precision=args.precision,
        recipe=recipes.RECIPES[name],
    )
    if seed == 0:
        print(
            f"recipe {name}: {result['epochs']} epochs, batches of "
            f"{result['batch_size']}; {result['runtime']}"
        )
    print(f"{name:<16} " * bool(args.compare) + format_result(result), flush=True)
    return result


def mean_line(results: list[dict]) -> tuple[float, float, str]:
    mean_acc = statistics.fmean(result["test_acc"] for result in results)
    mean_seconds = statistics.fmean(result["seconds"] for result in results)
    return mean_acc, mean_seconds, f"mean_test_acc={mean_acc:.4f} mean_seconds={mean_seconds:.2f}"


def command_speedrun(args: argparse.Namespace) -> int:
    """Run the recipe for ``--seeds`` seeds; the last line gives the mean accuracy and seconds.
    With ``--compare``, the published recipe runs before it on every seed, and the last lines
    set the two side by side."""
    check_int("--seeds", args.seeds, minimum=1)
    runtime.keep_freed_memory()  # as in command_train: a training process reuses freed memory
    device = runtime.select_device(args.device)
    source = sources.get_data_source(args.data, args.root, verify=args.verify)
    print(source.describe(), flush=True)
    name = args.recipe if args.recipe != "auto" else recipes.default_recipe(device)
    names = [PUBLISHED_RECIPE, name] if args.compare else [name]
    if len(set(names)) < len(names):
        print(f"error: --compare sets another recipe beside {PUBLISHED_RECIPE}", file=sys.stderr)
        return 2
    speed_data = batches.load_data(source, device)  # read once, before any clock starts
    results = {recipe: [] for recipe in names}
    for seed in range(args.seeds):
        for recipe in names:  # back to back: the same seed, data, precision and machine
            results[recipe].append(run_recipe(args, recipe, speed_data, device, seed))
    if not args.compare:
        print(mean_line(results[name])[2])
        return 0
    published, ours = (mean_line(results[recipe]) for recipe in names)
    for recipe, line in zip(names, (published, ours)):
        print(f"{recipe:<16} {line[2]}")
    print(
        f"{name} against {PUBLISHED_RECIPE}: {ours[1] / published[1]:.2f}x the time, "
        f"{100 * (ours[0] - published[0]):+.2f} points of test accuracy "
        f"({args.seeds} seed{'s' if args.seeds != 1 else ''})"
    )
    return 0


def add_commands(commands) -> None:
    """Register ``speedrun`` on the sub-command parsers of ``python -m labutils``."""
    parser = commands.add_parser(
        "speedrun",
        help="train airbench94's fast recipe, several seeds; print accuracy and time",
        description="Train airbench94's network and recipe (94% on CIFAR-10 in 8 epochs with "
        "Muon, 9.9 without) once per seed. Seconds count the whitening, the "
        "training and the test-time-augmented evaluation, not reading the files.",
    )
    add_data_arguments(parser)
    parser.add_argument(
        "--recipe",
        choices=("auto", *recipes.RECIPES),
        default="auto",
        help="airbench94: Nesterov SGD and lookahead, 9.9 epochs of 1024; "
        "airbench94_muon: Muon for the filters, 8 epochs of 2000; cpu: "
        "airbench94_muon with narrower conv groups, for CPUs; auto: cpu on "
        "a CPU, else airbench94_muon (default: %(default)s)",
    )
    parser.add_argument(
        "--seeds", type=int, default=1, help="runs, with seeds 0, 1, ... (default: %(default)s)"
    )
    parser.add_argument(
        "--compare",
        action="store_true",
        help=f"also run {PUBLISHED_RECIPE} exactly as published, before the recipe on every "
        "seed, and print both accuracies and times and their ratio",
    )
    parser.add_argument(
        "--epochs",
        type=float,
        default=None,
        help="epochs, fractions allowed (default: the recipe's)",
    )
    parser.add_argument(
        "--batch-size", type=int, default=None, help="images per step (default: the recipe's)"
    )
    parser.add_argument(
        "--tta",
        type=int,
        choices=batches.TTA_LEVELS,
        default=2,
        help="test-time augmentation: 0 none, 1 mirror, 2 mirror and one-pixel "
        "shifts (default: %(default)s)",
    )
    add_device_argument(parser)
    add_precision_argument(parser)
    parser.set_defaults(handler=command_speedrun)
