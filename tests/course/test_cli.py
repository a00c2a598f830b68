"""The command line: ``python -m labutils ...``.

One test starts a real subprocess; the others call ``cli.main`` with the same arguments, which
is the same code path without paying for a fresh interpreter and torch import each time.
"""

import json
import subprocess
import sys
import tarfile

import pytest
import torch

from labutils import data, runtime, sources
from labutils.course import cli
from labutils.engine import checkpoints


def run(capsys, *args):
    code = cli.main([str(arg) for arg in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_python_dash_m_labutils_runs_as_a_program(tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "labutils",
            "data",
            "synthetic",
            "--root",
            str(tmp_path),
            "--train-per-class",
            "2",
            "--test-per-class",
            "1",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert "30 synthetic images" in result.stdout


@pytest.mark.parametrize(
    "command",
    [["data", "download"], ["data", "verify"], ["data", "synthetic"], ["data", "summary"]],
)
def test_every_data_command_has_help(capsys, command):
    with pytest.raises(SystemExit) as exit_:
        cli.main([*command, "--help"])
    assert exit_.value.code == 0 and "usage: python -m labutils" in capsys.readouterr().out


def test_verify_reports_synthetic_files_and_fails(capsys, tmp_path):
    run(capsys, "data", "synthetic", "--root", tmp_path, "--train-per-class", 2)
    code, out, _ = run(capsys, "data", "verify", "--root", tmp_path)
    assert code == 1
    assert out.count("differs") == 7 and "These are synthetic files" in out


def test_an_error_is_one_line_for_the_student_not_a_traceback(capsys, tmp_path):
    code, _, err = run(capsys, "data", "verify", "--root", tmp_path / "nowhere")
    assert code == 2 and err.startswith("error: ") and "does not exist" in err


def test_summary_counts_images_per_class(capsys, synthetic_root, monkeypatch):
    monkeypatch.setenv("CIFAR10_ROOT", str(synthetic_root))
    code, out, _ = run(capsys, "data", "summary", "--data", "synthetic")
    assert code == 0 and "SYNTHETIC" in out
    rows = {line.split()[0]: line.split()[1:] for line in out.splitlines() if line.split()}
    per_class = [sources.SYNTHETIC_TRAIN_PER_CLASS, sources.SYNTHETIC_TEST_PER_CLASS]
    for name in data.CLASSES:  # the synthetic source writes its own balanced set
        assert rows[name] == [str(count) for count in per_class], rows.get(name)
    assert rows["total"] == [str(10 * count) for count in per_class]


def test_download_from_a_local_archive_checks_its_md5(capsys, synthetic_root, tmp_path):
    archive = tmp_path / data.ARCHIVE_NAME
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(synthetic_root / data.BATCH_FOLDER, arcname=data.BATCH_FOLDER)
    code, _, err = run(
        capsys, "data", "download", "--root", tmp_path / "root", "--archive", archive
    )
    assert code == 2 and "Nothing was installed" in err
    code, out, _ = run(
        capsys, "data", "download", "--root", tmp_path / "root", "--archive", archive, "--no-verify"
    )
    assert code == 1  # installed, but the files are not the official ones
    assert "Installed CIFAR-10" in out


# --------------------------------------------------------------------------- train


@pytest.mark.slow
def test_train_learns_the_synthetic_classes_and_writes_the_run_folder(capsys, tmp_path):
    out = tmp_path / "cnn"
    # The cpu profile on synthetic data: 2 000 images, enough steps for the CNN to learn them.
    code, stdout, _ = run(
        capsys,
        "train",
        "--model",
        "cnn",
        "--profile",
        "cpu",
        "--data",
        "synthetic",
        "--root",
        tmp_path / "data",
        "--epochs",
        2,
        "--out",
        out,
    )
    assert code == 0
    assert "SYNTHETIC" in stdout and "precision=" in stdout
    history = json.loads((out / "history.json").read_text())
    assert len(history) == 2 and history[-1]["test_acc"] > 0.9
    info = json.loads((out / "run.json").read_text())
    assert info["model"] == "cnn" and info["data_kind"] == "synthetic"
    assert info["parameters"] == 1125258 and info["settings"]["epochs"] == 2
    model = checkpoints.load_trained_model(out / "model.pt")
    assert model.__class__.__name__ == "CNN"


def smoke_mlp_arguments(tmp_path, *options) -> list:
    """``train`` of the MLP on the smoke profile, data in tmp_path, then ``options``."""
    return ["train", "--model", "mlp", "--profile", "smoke", "--root", tmp_path / "data", *options]


def test_train_resume_of_a_finished_run_trains_nothing_more(capsys, tmp_path):
    arguments = smoke_mlp_arguments(tmp_path, "--epochs", 1, "--out", tmp_path / "mlp")
    run(capsys, *arguments)
    code, stdout, _ = run(capsys, *arguments, "--resume")
    assert code == 0 and "1 of 1 epochs done" in stdout


def test_train_names_a_bad_value(capsys, tmp_path):
    code, _, err = run(
        capsys, *smoke_mlp_arguments(tmp_path, "--max-lr", -1, "--out", tmp_path / "x")
    )
    assert code == 2 and "max_lr = -1.0 is not valid: use a finite number > 0" in err


def test_train_lets_its_own_process_reuse_freed_memory(capsys, tmp_path):
    runtime.keep_freed_memory.cache_clear()  # forget earlier calls; the setting itself stays
    code, _, _ = run(
        capsys, *smoke_mlp_arguments(tmp_path, "--epochs", 1, "--out", tmp_path / "mlp")
    )
    assert code == 0 and runtime.keep_freed_memory.cache_info().currsize == 1


def test_train_on_a_missing_gpu_is_a_clear_error(capsys, tmp_path):
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    code, _, err = run(capsys, *smoke_mlp_arguments(tmp_path, "--device", "cuda"))
    assert code == 2 and "not available on this machine" in err
