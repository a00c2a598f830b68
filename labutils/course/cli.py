"""The command line: ``python -m labutils data|train|run|speedrun ...``."""

# Over 300 lines on purpose: all of the lab's argparse is here, one section per command, so
# that no library module needs to import the command line.

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

from labutils import data, loaders, models, runs, runtime, sources, train
from labutils.checks import check_int
from labutils.course import budget, profiles
from labutils.download import ARCHIVE_MD5, DownloadError, download_cifar10
from labutils.engine import distributed
from labutils.speedrun import batches, recipes, trainer


def add_data_arguments(parser: argparse.ArgumentParser) -> None:
    """The options every command that reads data shares."""
    parser.add_argument(
        "--data",
        choices=sources.SOURCES,
        default="auto",
        help="auto: CIFAR-10 if present or downloadable, else synthetic (default: %(default)s)",
    )
    parser.add_argument(
        "--root",
        type=Path,
        default=None,
        help="folder that contains cifar-10-batches-py "
        "(default: $CIFAR10_ROOT, else data/ in the repository)",
    )
    parser.add_argument(
        "--no-verify",
        dest="verify",
        action="store_false",
        help="accept a copy whose md5 sums differ from the official release "
        "(still read safely and checked)",
    )


def add_device_argument(parser: argparse.ArgumentParser) -> None:
    """The ``--device`` option of every command that trains."""
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N | mps")


def add_precision_argument(parser: argparse.ArgumentParser) -> None:
    """--precision, the same for every command that trains."""
    parser.add_argument(
        "--precision",
        default="auto",
        choices=runtime.PRECISION_CHOICES,
        help="auto: bf16 autocast where the hardware runs it natively (default: %(default)s)",
    )


# --------------------------------------------------------------------------- data


def summarize_source(source: sources.DataSource) -> str:
    """A one-screen summary: files, images per class per split, whether official."""
    lines = [source.describe(), ""]
    names = data.load_class_names(source.root, verify=source.verified)
    counts = {}
    for split in data.SPLITS:
        _, labels = source.load(split)
        counts[split] = Counter(labels.tolist())
    lines.append(f"{'class':<12}{'train':>8}{'test':>8}")
    for index, name in enumerate(names):
        lines.append(f"{name:<12}{counts['train'][index]:>8}{counts['test'][index]:>8}")
    totals = [sum(counts[split].values()) for split in data.SPLITS]
    lines.append(f"{'total':<12}{totals[0]:>8}{totals[1]:>8}")
    if not source.is_synthetic:
        lines += ["", data.format_file_checks(data.verify_files(source.root))]
    return "\n".join(lines)


def command_download(args: argparse.Namespace) -> int:
    root = args.root or sources.default_root()
    checks = download_cifar10(
        root, archive=args.archive, md5=ARCHIVE_MD5 if args.verify else None, timeout=args.timeout
    )
    return 0 if all(check.status == "official" for check in checks) else 1


def command_verify(args: argparse.Namespace) -> int:
    root = args.root or sources.default_root()
    checks = data.verify_files(root)
    print(f"{root / data.BATCH_FOLDER}\n{data.format_file_checks(checks)}")
    official = all(check.status == "official" for check in checks)
    if not official:
        print(
            "\nNot every file is official. "
            + (
                "These are synthetic files."
                if data.is_synthetic(root)
                else "Download again, or read this copy with --no-verify if you trust it."
            )
        )
    return 0 if official else 1


def command_synthetic(args: argparse.Namespace) -> int:
    folder = data.write_synthetic_cifar10(
        args.root, args.train_per_class, args.test_per_class, args.seed
    )
    count = 10 * (args.train_per_class + args.test_per_class)
    print(f"Wrote {count} synthetic images (not CIFAR-10) in the CIFAR-10 format to {folder}")
    return 0


def command_summary(args: argparse.Namespace) -> int:
    source = sources.get_data_source(args.data, args.root, verify=args.verify)
    print(summarize_source(source))
    return 0


def add_data_commands(commands) -> None:
    parser = commands.add_parser("data", help="download, verify, summarise or synthesise data")
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")

    download = actions.add_parser("download", help="install the official archive (md5-checked)")
    download.add_argument("--root", type=Path, default=None, help="where to install")
    download.add_argument(
        "--archive",
        type=Path,
        default=None,
        help=f"install from a local copy of {data.ARCHIVE_NAME} instead",
    )
    download.add_argument(
        "--no-verify",
        dest="verify",
        action="store_false",
        help="accept an archive whose md5 is not the official one",
    )
    download.add_argument(
        "--timeout",
        type=float,
        default=30.0,
        help="seconds to wait on the network (default: %(default)s)",
    )
    download.set_defaults(handler=command_download)

    verify = actions.add_parser(
        "verify", help="compare every file with the official md5; exit 0 only if all are official"
    )
    verify.add_argument("--root", type=Path, default=None)
    verify.set_defaults(handler=command_verify)

    synthetic = actions.add_parser("synthetic", help="write synthetic files in the official format")
    synthetic.add_argument("--root", type=Path, required=True)
    synthetic.add_argument("--train-per-class", type=int, default=100)
    synthetic.add_argument("--test-per-class", type=int, default=20)
    synthetic.add_argument("--seed", type=int, default=0)
    synthetic.set_defaults(handler=command_synthetic)

    summary = actions.add_parser("summary", help="resolve the data source and summarise it")
    add_data_arguments(summary)
    summary.set_defaults(handler=command_summary)


# --------------------------------------------------------------------------- train


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


def add_train_command(commands) -> None:
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
    parser.add_argument(
        "--compile",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="train through torch.compile (inductor): a minute or more of compiling first; "
        "benchmarks/compile.py says whether it pays on this machine (default: off)",
    )
    parser.set_defaults(handler=command_train)


# --------------------------------------------------------------------------- run


def command_run(args: argparse.Namespace) -> int:
    from labutils.course import runner  # papermill is only needed here

    try:
        runner.run_series(
            args.profile,
            args.data,
            args.root,
            args.verify,
            args.out,
            args.seed,
            budget_minutes=args.budget,
            epochs=args.epochs,
        )
    except (runner.NotebookFailed, budget.BudgetError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


def add_run_command(commands) -> None:
    parser = commands.add_parser(
        "run",
        help="execute the whole notebook series with papermill into a run folder",
        description="Execute notebooks 01-04 (03 once per model) with papermill. The run "
        "folder gets the executed notebooks, each model's files, the figures and "
        "summary.md.",
    )
    parser.add_argument(
        "--profile",
        default="auto",
        choices=("auto", *profiles.PROFILE_NAMES),
        help="smoke: tiny synthetic data, a minute or two; cpu: planned into a time budget "
        "(60 minutes unless --budget says otherwise); gpu: 20 epochs per model, as the report "
        "trained; auto: gpu if CUDA is available, else cpu (default: %(default)s)",
    )
    add_data_arguments(parser)
    parser.add_argument(
        "--out", type=Path, default=Path("runs/latest"), help="run folder (default: %(default)s)"
    )
    fixed = parser.add_mutually_exclusive_group()
    fixed.add_argument(
        "--budget",
        type=float,
        metavar="MINUTES",
        help="plan the series into this many minutes on this machine: each model's epochs "
        "are picked from a few timed steps (default: the profile's, 60 for cpu; 0: the "
        "profile's fixed epochs)",
    )
    fixed.add_argument(
        "--epochs", type=int, help="train every model this many epochs, with no time budget"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed (default: %(default)s)")
    parser.set_defaults(handler=command_run)


# --------------------------------------------------------------------------- speedrun


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


def add_speedrun_command(commands) -> None:
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


# --------------------------------------------------------------------------- teaching


def command_student(args: argparse.Namespace) -> int:
    from labutils.course import grading, runner  # nbgrader is only needed here

    start = time.perf_counter()
    written = grading.write_student_edition(args.source or runner.NOTEBOOK_FOLDER, args.out)
    for path in written:
        print(f"wrote {path}")
    print(
        f"Student edition: {len(written)} notebooks in {args.out} "
        f"({time.perf_counter() - start:.1f} s). Solutions, outputs and hidden tests removed."
    )
    return 0


def command_check(args: argparse.Namespace) -> int:
    from labutils.course import grading  # nbclient and papermill are only needed here

    everything_passed = True
    for path in args.notebooks:
        if not path.is_file():
            raise FileNotFoundError(
                f"{path} does not exist: give the path of a notebook, for "
                f"example notebooks/02_models.ipynb."
            )
        start = time.perf_counter()
        print(f"checking {path} (profile {args.profile}) ...", flush=True)
        results = grading.grade_executed(grading.execute_for_check(path, args.profile))
        print(grading.format_results(path.name, results))
        print(f"  ({time.perf_counter() - start:.0f} s)")
        everything_passed = everything_passed and grading.all_passed(results)
    return 0 if everything_passed else 1


def add_teaching_commands(commands) -> None:
    student = commands.add_parser(
        "student",
        help="write the student edition of the notebooks (nbgrader stubs, no outputs)",
        description="Write the student edition: every solution region replaced by nbgrader's "
        "stub, outputs cleared, hidden tests removed, with nbgrader's own "
        "preprocessors.",
    )
    student.add_argument(
        "--out",
        type=Path,
        default=Path("student"),
        help="folder for the student notebooks (default: %(default)s)",
    )
    student.add_argument(
        "--source",
        type=Path,
        default=None,
        help="folder of solution notebooks (default: the lab's notebooks/)",
    )
    student.set_defaults(handler=command_student)

    check = commands.add_parser(
        "check",
        help="self-check: run notebooks and report every exercise",
        description="Execute each notebook in a fresh kernel (an error in one cell does not "
        "stop the rest) and print one line per exercise: passed, failed (with the "
        "check's message) or not attempted, then the points. Exit 0 only when "
        "every check passes.",
    )
    check.add_argument("notebooks", nargs="+", type=Path, metavar="NOTEBOOK")
    check.add_argument(
        "--profile",
        default="smoke",
        choices=profiles.PROFILE_NAMES,
        help="smoke: tiny synthetic data, seconds per notebook (default: %(default)s)",
    )
    check.set_defaults(handler=command_check)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m labutils", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add_data_commands(commands)
    add_train_command(commands)
    add_run_command(commands)
    add_speedrun_command(commands)
    add_teaching_commands(commands)
    return parser


# Errors whose message says what went wrong and what to do: no traceback needed.
STUDENT_ERRORS = (
    data.CIFAR10FileError,
    DownloadError,
    train.TrainingDiverged,
    ValueError,
    FileNotFoundError,
)


def main(argv: list[str] | None = None) -> int:
    """Run one command; errors meant for a student are printed without a traceback."""
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except STUDENT_ERRORS as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
