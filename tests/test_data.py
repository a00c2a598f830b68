"""The safe reader, the checks on what it reads, and verification against the official md5."""

import hashlib
import os
import pickle

import numpy as np
import pytest
import torchvision

from labutils import data, synthetic

BATCH = data.BATCH_FOLDER


def official_meta_bytes() -> bytes:
    """The official batches.meta, rebuilt opcode by opcode (as cPickle wrote it, with memo)."""

    def short(text, memo):
        return b"U" + bytes([len(text)]) + text.encode() + b"q" + bytes([memo])

    names = b"".join(short(name, 5 + i) for i, name in enumerate(data.CLASSES))
    return (
        b"\x80\x02}q\x01("
        + short("num_cases_per_batch", 2)
        + b"M\x10\x27"
        + short("label_names", 3)
        + b"]q\x04("
        + names
        + b"e"
        + short("num_vis", 15)
        + b"M\x00\x0cu."
    )


# --------------------------------------------------------------------------- the official format


def test_official_meta_rebuilt_here_has_the_official_md5():
    # Proves that this opcode-level picture of the format, the one the synthetic writer
    # follows, is the real one.
    assert hashlib.md5(official_meta_bytes()).hexdigest() == data.OFFICIAL_MD5["batches.meta"]
    assert data.check_meta(pickle.loads(official_meta_bytes(), encoding="latin1"), "meta") == list(
        data.CLASSES
    )


def test_pixels_are_red_then_green_then_blue_planes_in_row_major_order(synthetic_root):
    with open(synthetic_root / BATCH / "data_batch_1", "rb") as file:
        row = pickle.load(file, encoding="latin1")["data"][0]
    images, _ = data.load_cifar10(synthetic_root, "train", verify=False)
    image = images[0]
    assert image[0, 0, 0] == row[0] and image[0, 1, 0] == row[1] and image[1, 0, 0] == row[32]
    assert image[0, 0, 1] == row[1024] and image[0, 0, 2] == row[2048]


# --------------------------------------------------------------------------- loading


def test_load_cifar10_returns_uint8_images_and_int64_labels(synthetic_root):
    images, labels = data.load_cifar10(synthetic_root, "train", verify=False)
    assert images.shape == (200, 32, 32, 3) and images.dtype == np.uint8
    assert labels.shape == (200,) and labels.dtype == np.int64
    assert np.bincount(labels).tolist() == [20] * 10
    test_images, _ = data.load_cifar10(synthetic_root, "test", verify=False)
    assert test_images.shape == (50, 32, 32, 3)


def test_safe_reader_gives_the_same_batch_through_str_and_bytes_keys(synthetic_root):
    path = synthetic_root / BATCH / "data_batch_3"
    as_text = data.check_batch(data.read_pickle(path, encoding="latin1"), path)
    as_bytes = data.check_batch(data.read_pickle(path, encoding="bytes"), path)
    assert all(np.array_equal(a, b) for a, b in zip(as_text, as_bytes))


def test_unknown_split_is_refused(synthetic_root):
    with pytest.raises(ValueError, match="split = 'validation' is not valid"):
        data.load_cifar10(synthetic_root, "validation", verify=False)


def test_dataset_gives_pil_images_and_int_labels(synthetic_root):
    dataset = data.CIFAR10(
        synthetic_root,
        train=False,
        verify=False,
        transform=torchvision.transforms.ToTensor(),
        target_transform=lambda label: label + 100,
    )
    image, target = dataset[0]
    assert len(dataset) == 50 and image.shape == (3, 32, 32) and target >= 100
    plain = data.CIFAR10(synthetic_root, train=True, verify=False)
    assert plain[0][0].size == (32, 32) and isinstance(plain[0][1], int)
    assert plain.classes == list(data.CLASSES) and plain.class_to_idx["truck"] == 9


# --------------------------------------------------------------------------- verification


def test_verify_reports_each_file(copy_root):
    folder = copy_root / BATCH
    (folder / "batches.meta").write_bytes(official_meta_bytes())
    (folder / "data_batch_5").unlink()
    (folder / "test_batch").unlink()
    (folder / "test_batch").mkdir()  # exists but cannot be read as a file
    statuses = {check.name: check.status for check in data.verify_files(copy_root)}
    assert statuses == {
        "data_batch_1": "differs",
        "data_batch_2": "differs",
        "data_batch_3": "differs",
        "data_batch_4": "differs",
        "data_batch_5": "missing",
        "test_batch": "unreadable",
        "batches.meta": "official",
    }
    table = data.format_file_checks(data.verify_files(copy_root))
    assert data.OFFICIAL_MD5["data_batch_1"] in table


def test_verified_loading_refuses_unofficial_files_and_names_the_opt_out(copy_root):
    with pytest.raises(data.NotOfficialError) as error:
        data.load_cifar10(copy_root, "train")
    message = str(error.value)
    assert all(name in message for name in data.TRAIN_FILES)
    assert "verify=False" in message and "--no-verify" in message
    images, _ = data.load_cifar10(copy_root, "train", verify=False)
    assert len(images) == 200


# --------------------------------------------------------------------------- unsafe and bad files


class RunsACommand:
    """What an attacker would pickle: unpickling it calls os.system."""

    def __init__(self, command):
        self.command = command

    def __reduce__(self):
        return os.system, (self.command,)


def test_poisoned_batch_is_refused_before_any_code_runs(copy_root, tmp_path):
    proof = tmp_path / "the-command-ran"
    poison = {"data": RunsACommand(f"touch {proof}"), "labels": [0]}
    (copy_root / BATCH / "data_batch_1").write_bytes(pickle.dumps(poison, protocol=2))
    with pytest.raises(data.UnsafePickleError, match="system"):
        data.load_cifar10(copy_root, "train", verify=False)
    assert not proof.exists()


@pytest.mark.parametrize(
    "payload",
    [
        pickle.dumps(print, protocol=2),  # builtins.print
        pickle.dumps(np.float64(1.5), protocol=4),  # numpy._core.multiarray.scalar
        b"cposix\nsystem\n(S'true'\ntR.",  # protocol 0, hand-written
    ],
)
def test_safe_reader_refuses_any_other_global(tmp_path, payload):
    path = tmp_path / "data_batch_1"
    path.write_bytes(payload)
    with pytest.raises(data.UnsafePickleError, match=str(path)):
        data.read_pickle(path)


def test_missing_root_says_how_to_get_data(tmp_path):
    with pytest.raises(data.CIFAR10FileError, match="does not exist.*data download"):
        data.load_cifar10(tmp_path / "nowhere", verify=False)


def test_root_pointing_at_the_batch_folder_names_the_parent(synthetic_root):
    with pytest.raises(data.CIFAR10FileError) as error:
        data.load_cifar10(synthetic_root / BATCH, verify=False)
    assert f"pass the folder that contains it: {synthetic_root}" in str(error.value)


def test_root_without_batch_folder_says_how_to_get_data(tmp_path):
    with pytest.raises(data.CIFAR10FileError, match=f"No '{BATCH}' folder in {tmp_path}"):
        data.load_cifar10(tmp_path, verify=False)


@pytest.mark.parametrize(
    "content, expected",
    [
        (b"\x89PNG\r\n\x1a\n" + bytes(100), "not a readable CIFAR-10 pickle"),
        (b"", "not a readable CIFAR-10 pickle"),
        (pickle.dumps([1, 2, 3], protocol=2), "holds a list"),
        (pickle.dumps({"labels": [1]}, protocol=2), "no \\['data'\\] key"),
    ],
)
def test_foreign_or_empty_batch_file_is_named_with_the_fix(copy_root, content, expected):
    path = copy_root / BATCH / "data_batch_1"
    path.write_bytes(content)
    with pytest.raises(data.CIFAR10FileError, match=expected) as error:
        data.load_cifar10(copy_root, "train", verify=False)
    assert str(path) in str(error.value)


def test_truncated_batch_file_is_named(copy_root):
    path = copy_root / BATCH / "data_batch_2"
    path.write_bytes(path.read_bytes()[:5000])
    with pytest.raises(data.CIFAR10FileError, match="download the data again") as error:
        data.load_cifar10(copy_root, "train", verify=False)
    assert str(path) in str(error.value)


def write_batch(path, data_array, labels):
    path.write_bytes(
        synthetic.dumps_py2({"batch_label": "x", "labels": labels, "data": data_array})
    )


def test_wrong_image_shape_is_refused(copy_root):
    path = copy_root / BATCH / "data_batch_1"
    write_batch(path, np.zeros((4, 1000), np.uint8), [0, 1, 2, 3])
    with pytest.raises(data.CIFAR10FileError, match=r"shape \(N, 3072\), found uint8 \(4, 1000\)"):
        data.load_cifar10(copy_root, "train", verify=False)


def test_label_count_must_match_image_count(copy_root):
    path = copy_root / BATCH / "data_batch_1"
    write_batch(path, np.zeros((4, 3072), np.uint8), [0, 1])
    with pytest.raises(data.CIFAR10FileError, match="expected 4 integer labels"):
        data.load_cifar10(copy_root, "train", verify=False)


def test_label_out_of_range_is_refused(copy_root):
    path = copy_root / BATCH / "data_batch_4"
    write_batch(path, np.zeros((3, 3072), np.uint8), [0, 10, 3])
    with pytest.raises(data.CIFAR10FileError, match=r"labels must be 0-9, found \[10\]") as error:
        data.load_cifar10(copy_root, "train", verify=False)
    assert str(path) in str(error.value)


def test_meta_without_ten_names_is_refused(copy_root):
    path = copy_root / BATCH / "batches.meta"
    path.write_bytes(synthetic.dumps_py2({"label_names": ["cat", "dog"]}))
    with pytest.raises(data.CIFAR10FileError, match="10 'label_names'"):
        data.load_class_names(copy_root, verify=False)
