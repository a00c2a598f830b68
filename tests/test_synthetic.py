"""Synthetic CIFAR-10 files: faithful to the official format, deterministic, learnable."""

import pickle
import pickletools

import numpy as np
import pytest
import torchvision

from labutils import data, synthetic

BATCH = data.BATCH_FOLDER


# --------------------------------------------------------------------------- format fidelity


def test_synthetic_batches_load_with_plain_pickle_and_str_keys(synthetic_root):
    with open(synthetic_root / BATCH / "data_batch_1", "rb") as file:
        batch = pickle.load(file, encoding="latin1")
    assert list(batch) == ["batch_label", "labels", "data", "filenames"]
    assert batch["data"].dtype == np.uint8 and batch["data"].shape == (40, 3072)
    assert all(isinstance(label, int) and 0 <= label <= 9 for label in batch["labels"])
    assert batch["batch_label"] == "training batch 1 of 5"


def test_synthetic_batches_load_with_plain_pickle_and_bytes_keys(synthetic_root):
    with open(synthetic_root / BATCH / "test_batch", "rb") as file:
        batch = pickle.load(file, encoding="bytes")
    assert set(batch) == {b"batch_label", b"labels", b"data", b"filenames"}
    assert batch[b"data"].shape == (50, 3072)


@pytest.mark.parametrize("name", data.ALL_FILES)
def test_synthetic_files_are_python2_protocol2_pickles(synthetic_root, name):
    raw = (synthetic_root / BATCH / name).read_bytes()
    opcodes = list(pickletools.genops(raw))
    assert opcodes[0][0].name == "PROTO" and opcodes[0][1] == 2
    names = {opcode.name for opcode, _, _ in opcodes}
    assert not names & {
        "BINUNICODE",
        "SHORT_BINUNICODE",
        "BINBYTES",
        "SHORT_BINBYTES",
        "STACK_GLOBAL",
        "FRAME",
        "MEMOIZE",
    }, "Python-3-only opcodes"
    globals_used = {arg for opcode, arg, _ in opcodes if opcode.name == "GLOBAL"}
    assert globals_used <= {"numpy.core.multiarray _reconstruct", "numpy ndarray", "numpy dtype"}


def test_torchvision_reads_synthetic_files_once_checksums_are_bypassed(synthetic_root):
    class UncheckedCIFAR10(torchvision.datasets.CIFAR10):
        meta = dict(torchvision.datasets.CIFAR10.meta, md5=None)

        def _check_integrity(self):
            return True

    ours_images, ours_labels = data.load_cifar10(synthetic_root, "train", verify=False)
    theirs = UncheckedCIFAR10(synthetic_root, train=True)
    assert np.array_equal(theirs.data, ours_images)
    assert theirs.targets == ours_labels.tolist()
    assert theirs.classes == list(data.CLASSES)


# --------------------------------------------------------------------------- content


def test_synthetic_files_are_deterministic_for_a_seed(tmp_path):
    for name in ("a", "b", "c"):
        synthetic.write_synthetic_cifar10(tmp_path / name, 3, 2, seed=1 if name != "c" else 2)

    def read(name):
        return (tmp_path / name / BATCH / "data_batch_2").read_bytes()

    assert read("a") == read("b") and read("a") != read("c")


def test_synthetic_classes_are_learnable_by_a_nearest_mean_classifier(synthetic_root):
    train_images, train_labels = data.load_cifar10(synthetic_root, "train", verify=False)
    test_images, test_labels = data.load_cifar10(synthetic_root, "test", verify=False)

    def flat(images):
        return images.reshape(len(images), -1).astype(np.float32)

    means = np.stack([flat(train_images)[train_labels == c].mean(0) for c in range(10)])
    distances = ((flat(test_images)[:, None, :] - means[None]) ** 2).sum(-1)
    assert (distances.argmin(1) == test_labels).mean() > 0.4  # chance is 0.1


def test_synthetic_sizes_must_be_positive(tmp_path):
    with pytest.raises(ValueError, match="train_per_class = 0 is not valid"):
        synthetic.write_synthetic_cifar10(tmp_path, train_per_class=0)
    assert not (tmp_path / BATCH).exists()


def test_synthetic_files_carry_the_marker_the_reader_recognises(tmp_path):
    folder = synthetic.write_synthetic_cifar10(tmp_path, 1, 1, seed=3)
    assert folder == tmp_path / BATCH and data.is_synthetic(tmp_path)
    assert not data.is_synthetic(tmp_path / "elsewhere")


# --------------------------------------------------------------------------- where it lives


def test_the_writer_is_still_reachable_as_data_write_synthetic_cifar10():
    assert data.write_synthetic_cifar10 is synthetic.write_synthetic_cifar10
    assert "write_synthetic_cifar10" in dir(data)
