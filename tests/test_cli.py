"""The command line: ``python -m labutils ...``.

One test starts a real subprocess; the others call ``cli.main`` with the same arguments, which
is the same code path without paying for a fresh interpreter and torch import each time.
"""

import subprocess
import sys
import tarfile

import pytest

from labutils import cli, data


def run(capsys, *args):
    code = cli.main([str(arg) for arg in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_python_dash_m_labutils_runs_as_a_program(tmp_path):
    result = subprocess.run([sys.executable, "-m", "labutils", "data", "synthetic", "--root",
                             str(tmp_path), "--train-per-class", "2", "--test-per-class", "1"],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "30 synthetic images" in result.stdout


@pytest.mark.parametrize("command", [["data", "download"], ["data", "verify"],
                                     ["data", "synthetic"], ["data", "summary"]])
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
    assert "airplane" in out and "total" in out


def test_download_from_a_local_archive_checks_its_md5(capsys, synthetic_root, tmp_path):
    archive = tmp_path / data.ARCHIVE_NAME
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(synthetic_root / data.BATCH_FOLDER, arcname=data.BATCH_FOLDER)
    code, _, err = run(capsys, "data", "download", "--root", tmp_path / "root",
                       "--archive", archive)
    assert code == 2 and "Nothing was installed" in err
    code, out, _ = run(capsys, "data", "download", "--root", tmp_path / "root",
                       "--archive", archive, "--no-verify")
    assert code == 1  # installed, but the files are not the official ones
    assert "Installed CIFAR-10" in out
