"""Synthetic CIFAR-10: learnable images written in exactly the official file format.

Every reader in the lab (``data``'s safe reader, torchvision, a notebook's own cells) is then
exercised on the real format in CI and offline. The format's facts come from ``cifar_format``;
``data`` offers ``write_synthetic_cifar10`` beside its readers.
"""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path

import numpy as np

from labutils.checks import check_int
from labutils.cifar_format import (
    BATCH_FOLDER,
    CLASSES,
    IMAGE_SIZE,
    META_FILE,
    PIXELS_PER_IMAGE,
    SYNTHETIC_MARKER,
    TEST_FILES,
    TRAIN_FILES,
    write_atomically,
)

# --------------------------------------------------------------------------- Python 2 pickles
# Written opcode by opcode: Python 3's pickler cannot write a Python 2 ``str`` (it writes
# bytes through ``_codecs.encode``), and the official files are made of them.


def _py2_str(value: str | bytes) -> bytes:
    raw = value.encode("latin1") if isinstance(value, str) else bytes(value)
    if len(raw) < 256:
        return b"U" + bytes([len(raw)]) + raw  # SHORT_BINSTRING
    return b"T" + struct.pack("<i", len(raw)) + raw  # BINSTRING


def _py2_int(value: int) -> bytes:
    if 0 <= value < 256:
        return b"K" + bytes([value])  # BININT1
    if 0 <= value < 65536:
        return b"M" + struct.pack("<H", value)  # BININT2
    return b"J" + struct.pack("<i", value)  # BININT


def _py2_list(items: list) -> bytes:
    out = [b"]"]  # EMPTY_LIST, then MARK ... APPENDS in chunks of 1000, as cPickle writes
    for start in range(0, len(items), 1000):
        out += [b"("] + [_py2_value(item) for item in items[start : start + 1000]] + [b"e"]
    return b"".join(out)


def _py2_uint8_matrix(array: np.ndarray) -> bytes:
    """An (N, 3072) uint8 array as numpy pickles it under Python 2."""
    rows, columns = array.shape
    dtype = (
        b"cnumpy\ndtype\n"
        + _py2_str("u1")
        + _py2_int(0)
        + _py2_int(1)
        + b"\x87R"
        + b"("
        + _py2_int(3)
        + _py2_str("|")
        + b"NNN"
        + struct.pack("<ci", b"J", -1)
        + struct.pack("<ci", b"J", -1)
        + _py2_int(0)
        + b"tb"
    )
    return (
        b"cnumpy.core.multiarray\n_reconstruct\n"
        + b"cnumpy\nndarray\n"
        + _py2_int(0)
        + b"\x85"
        + _py2_str("b")
        + b"\x87R"
        + b"("
        + _py2_int(1)
        + _py2_int(rows)
        + _py2_int(columns)
        + b"\x86"
        + dtype
        + b"\x89"
        + _py2_str(np.ascontiguousarray(array).tobytes())
        + b"tb"
    )


def _py2_value(value) -> bytes:
    if isinstance(value, (str, bytes)):
        return _py2_str(value)
    if isinstance(value, (int, np.integer)):
        return _py2_int(int(value))
    if isinstance(value, list):
        return _py2_list(value)
    if isinstance(value, np.ndarray):
        return _py2_uint8_matrix(value)
    raise TypeError(f"cannot write {type(value).__name__} as a Python 2 pickle")


def dumps_py2(record: dict) -> bytes:
    """A dict of str, int, list and uint8-matrix values as a Python 2 protocol-2 pickle."""
    items = b"".join(_py2_str(key) + _py2_value(value) for key, value in record.items())
    return b"\x80\x02}(" + items + b"u."


# --------------------------------------------------------------------------- synthetic images


def synthetic_images(labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Learnable images: each class has its own stripe direction and one of five colours.

    Classes ``c`` and ``c + 5`` share a colour, so colour alone gets only half of them right.
    """
    count = len(labels)
    y, x = np.mgrid[0:IMAGE_SIZE, 0:IMAGE_SIZE].astype(np.float32)
    angle = labels[:, None, None] * (np.pi / len(CLASSES))
    frequency = (2 + labels % 3)[:, None, None] * (2 * np.pi / IMAGE_SIZE)
    phase = rng.uniform(0, 2 * np.pi, size=(count, 1, 1))
    stripes = np.sin(frequency * (x * np.cos(angle) + y * np.sin(angle)) + phase)
    hue = (labels % 5)[:, None] * (2 * np.pi / 5) + np.array([0.0, 2.1, 4.2])
    colour = 128 + 70 * np.cos(hue)  # (N, 3): a distinct colour per class
    images = colour[:, None, None, :] + 50 * stripes[..., None]
    images += rng.normal(0, 30, size=images.shape) + rng.normal(0, 20, size=(count, 1, 1, 1))
    return np.clip(images, 0, 255).astype(np.uint8)


def _synthetic_split(per_class: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    labels = rng.permutation(np.repeat(np.arange(len(CLASSES)), per_class))
    images = synthetic_images(labels, rng)
    return images.transpose(0, 3, 1, 2).reshape(len(labels), PIXELS_PER_IMAGE), labels


def _batch_record(label: str, data: np.ndarray, labels: np.ndarray, first: int) -> dict:
    names = [f"{CLASSES[c]}_s{first + i:06d}.png" for i, c in enumerate(labels.tolist())]
    return {"batch_label": label, "labels": labels.tolist(), "data": data, "filenames": names}


def write_synthetic_cifar10(
    root: str | os.PathLike, train_per_class: int = 100, test_per_class: int = 20, seed: int = 0
) -> Path:
    """Write synthetic CIFAR-10 files in exactly the official format; returns the batch folder."""
    check_int("train_per_class", train_per_class)
    check_int("test_per_class", test_per_class)
    folder = Path(root).expanduser() / BATCH_FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    train_data, train_labels = _synthetic_split(train_per_class, rng)
    chunks = np.array_split(np.arange(len(train_labels)), len(TRAIN_FILES))
    for number, (name, rows) in enumerate(zip(TRAIN_FILES, chunks), start=1):
        record = _batch_record(
            f"training batch {number} of {len(TRAIN_FILES)}",
            train_data[rows],
            train_labels[rows],
            int(rows[0]),
        )
        write_atomically(folder / name, dumps_py2(record))
    test_data, test_labels = _synthetic_split(test_per_class, rng)
    record = _batch_record("testing batch 1 of 1", test_data, test_labels, 0)
    write_atomically(folder / TEST_FILES[0], dumps_py2(record))
    meta = {
        "num_cases_per_batch": len(chunks[0]),
        "label_names": list(CLASSES),
        "num_vis": PIXELS_PER_IMAGE,
    }
    write_atomically(folder / META_FILE, dumps_py2(meta))
    marker = {
        "train_per_class": int(train_per_class),
        "test_per_class": int(test_per_class),
        "seed": int(seed),
        "note": "synthetic images, not CIFAR-10",
    }
    write_atomically(folder / SYNTHETIC_MARKER, json.dumps(marker, indent=2).encode())
    return folder
