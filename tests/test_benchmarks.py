"""benchmarks/speed.py: the report's pipeline against the engine's, timed in one process."""

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

from labutils import data

SPEED_SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "speed.py"


@pytest.fixture(scope="module")
def speed():
    """The script imported as a module, to test its pieces without a subprocess."""
    spec = importlib.util.spec_from_file_location("benchmarks_speed", SPEED_SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_speed_script_prints_a_table_with_a_positive_ratio(tmp_path):
    data.write_synthetic_cifar10(tmp_path, train_per_class=20, test_per_class=5)
    result = subprocess.run(
        [
            sys.executable,
            str(SPEED_SCRIPT),
            "--root",
            str(tmp_path),
            "--steps",
            "2",
            "--repeats",
            "1",
            "--models",
            "mlp",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    header = next(line for line in lines if line.startswith("model "))
    assert "report img/s" in header and "engine img/s" in header and "engine / report" in header
    row = next(line for line in lines if line.startswith("mlp ")).split()
    assert row[-1].endswith("x") and float(row[-1].removesuffix("x")) > 0
    assert "SYNTHETIC" in result.stdout and "Machine:" in result.stdout


def test_markdown_table_has_a_header_a_rule_and_a_row_per_model(speed):
    row = {
        "model": "cnn",
        "steps": 30,
        "report_setup": "64, fp32, NCHW",
        "report": 400.0,
        "engine_setup": "128, bf16, channels_last",
        "engine": 1200.0,
        "ratio": 3.0,
    }
    lines = speed.format_table([row, {**row, "model": "mlp"}], markdown=True).splitlines()
    assert len(lines) == 4 and all(line.startswith("| ") for line in lines)
    assert lines[1].startswith("| --- | ---: |")
    assert lines[2] == (
        "| cnn | 30 | 64, fp32, NCHW | 400 | 128, bf16, channels_last | 1,200 | 3.00x |"
    )


def test_endless_keeps_one_iterator_until_it_runs_out(speed):
    class CountingLoader:
        iterators = 0

        def __iter__(self):
            CountingLoader.iterators += 1
            return iter(["batch 1", "batch 2", "batch 3"])

    batches = speed.endless(CountingLoader())
    taken = [next(batches) for _ in range(7)]
    assert taken[3] == "batch 1" and CountingLoader.iterators == 3


@pytest.mark.slow
def test_time_to_accuracy_sets_both_recipes_side_by_side(tmp_path):
    data.write_synthetic_cifar10(tmp_path, train_per_class=20, test_per_class=5)
    script = SPEED_SCRIPT.parent / "time_to_accuracy.py"
    result = subprocess.run(
        [sys.executable, str(script), "--root", str(tmp_path), "--models", "mlp"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    header = next(line for line in lines if line.startswith("model "))
    assert "report's recipe" in header and "lab's recipe" in header
    row = next(line for line in lines if line.startswith("mlp "))
    assert "min (epoch" in row and "x  " in row
    assert row.count("best ") == 2 and row.count(" epochs, ") == 2  # both whole runs
    assert "Machine:" in result.stdout


@pytest.fixture(scope="module")
def compile_benchmark():
    spec = importlib.util.spec_from_file_location(
        "benchmarks_compile", SPEED_SCRIPT.parent / "compile.py"
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_compile_benchmark_counts_the_arithmetic_of_a_training_step(compile_benchmark):
    import torch

    device = torch.device("cpu")
    model, optimizer, batch_size, run_steps = compile_benchmark.build("cnn", device, 2)
    images, labels = compile_benchmark.random_batch(batch_size, device, channels_last=False)
    flops = compile_benchmark.step_flops(model, optimizer, images, labels, None)
    # Forward and backward of the report's CNN: about 0.47 GFLOP per image.
    assert flops / batch_size / 1e9 == pytest.approx(0.47, abs=0.01)
    assert run_steps == 10 * (50_000 // 2)  # the cpu profile's 10 epochs of the official split
    assert compile_benchmark.matmul_gflops(device, None, repeats=1) > 0


def test_compile_benchmark_table_says_whether_compiling_pays(compile_benchmark):
    row = {"network": "cnn", "break-even steps": float("inf"), "compile pays": False}
    table = compile_benchmark.format_table([row], markdown=True).splitlines()
    assert table[0] == "| network | break-even steps | compile pays |"
    assert table[2] == "| cnn | never | no |"
