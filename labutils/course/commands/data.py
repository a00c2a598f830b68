"""``python -m labutils data download|verify|synthetic|summary``: the data files."""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path

from labutils import data, sources
from labutils.course.arguments import (
    add_data_arguments,
)
from labutils.download import ARCHIVE_MD5, DownloadError, download_cifar10

EXPLAINED_ERRORS = (DownloadError,)  # printed without a traceback (labutils.course.cli)


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


def add_commands(commands) -> None:
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
