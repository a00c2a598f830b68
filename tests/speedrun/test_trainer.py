"""airbench94's recipe run end to end (``labutils.speedrun``): a short run on synthetic files that
must learn, the cost estimates, the names notebook 05 reads through ``speedrun``, and the
``speedrun`` command's last line."""

import argparse
import json
import math
import re
from pathlib import Path

import pytest
import torch
from torch import nn

from labutils import data, sources
from labutils.course import cli
from labutils.course.commands import speedrun as speedrun_command
from labutils.speedrun import batches, network, optimizers, recipes, trainer

TRAIN_PER_CLASS, TEST_PER_CLASS = 60, 20
RESULT_LINE = re.compile(r"mean_test_acc=(\d+\.\d+) mean_seconds=(\d+\.\d+)")
# Half an epoch of batches of 200 on the CPU, no test-time augmentation: seconds per recipe.
SHORT_CPU_RUN = ["--epochs", "0.5", "--batch-size", "200", "--tta", "0", "--device", "cpu"]
NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "05_speedrun.ipynb"


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    """Synthetic files in the official format: 600 training and 200 test images."""
    root = tmp_path_factory.mktemp("speedrun")
    data.write_synthetic_cifar10(root, TRAIN_PER_CLASS, TEST_PER_CLASS, seed=0)
    return root


@pytest.fixture(scope="module")
def speed_data(data_root):
    return batches.load_data(sources.DataSource("synthetic", data_root, verified=False))


# --------------------------------------------------------------------------- the whole recipe


@pytest.mark.slow
def test_a_short_run_on_synthetic_data_learns(speed_data):
    result = trainer.run_speedrun(
        speed_data, epochs=3, batch_size=100, tta_level=2, seed=0, device="cpu", progress=False
    )
    assert result["test_acc"] > 0.6 and result["test_acc_no_tta"] > 0.6  # chance is 0.1
    assert result["steps"] == 3 * (10 * TRAIN_PER_CLASS // 100)
    parts = result["seconds_whiten"] + result["seconds_train"] + result["seconds_tta"]
    assert result["seconds"] == pytest.approx(parts) and result["seconds"] > 0


def test_fractional_epochs_stop_at_the_rounded_up_step_count(speed_data):
    result = trainer.run_speedrun(
        speed_data, epochs=0.5, batch_size=100, tta_level=0, device="cpu", progress=False
    )
    assert result["steps"] == math.ceil(0.5 * 6) and len(result["history"]) == 1
    assert result["test_acc"] == result["test_acc_no_tta"]


def test_a_batch_larger_than_the_training_set_is_refused_by_name(speed_data):
    with pytest.raises(ValueError, match="batch_size = 1024 .* 600 training images"):
        trainer.run_speedrun(speed_data, epochs=1, batch_size=1024, device="cpu")


@pytest.mark.slow
def test_a_short_muon_run_on_synthetic_data_learns(speed_data):
    result = trainer.run_speedrun(
        speed_data,
        epochs=3,
        batch_size=100,
        tta_level=1,
        seed=0,
        device="cpu",
        progress=False,
        recipe=recipes.RECIPES["airbench94_muon"],
    )
    assert result["test_acc"] > 0.6 and result["recipe"]["optimizer"] == "muon"


def test_every_name_notebook_05_reads_from_the_speed_track_is_there():
    cells = json.loads(NOTEBOOK.read_text(encoding="utf-8"))["cells"]
    code = "\n".join("".join(cell["source"]) for cell in cells if cell["cell_type"] == "code")
    modules = {
        "batches": batches,
        "network": network,
        "optimizers": optimizers,
        "recipes": recipes,
        "trainer": trainer,
    }
    uses = set(re.findall(rf"\b({'|'.join(modules)})\.([A-Za-z_]\w*)", code))
    assert ("trainer", "run_speedrun") in uses  # the pattern finds the notebook's uses
    assert sorted(f"{m}.{n}" for m, n in uses if not hasattr(modules[m], n)) == []


# --------------------------------------------------------------------------- cost estimates


def test_seconds_per_step_times_the_steps_after_one_warm_up_step():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten(), nn.Linear(4 * 30 * 30, 10))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    steps = []
    optimizer.register_step_post_hook(lambda *args: steps.append(1))
    before = model[0].weight.detach().clone()
    seconds = trainer.seconds_per_step(model, 8, "cpu", optimizer=optimizer, calls=3)
    assert len(steps) == 1 + 3 and seconds > 0
    assert not torch.equal(model[0].weight, before)  # real steps: time a throwaway network


def test_seconds_per_recipe_step_runs_every_recipe_on_a_small_batch():
    for recipe in recipes.RECIPES.values():
        assert trainer.seconds_per_recipe_step(recipe, 4, "cpu", calls=1) > 0


# --------------------------------------------------------------------------- command line


@pytest.mark.slow
def test_speedrun_command_ends_with_the_mean_accuracy_and_seconds(capsys, data_root):
    parser = argparse.ArgumentParser()
    speedrun_command.add_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(
        [
            "speedrun",
            "--data",
            "auto",
            "--root",
            str(data_root),
            "--recipe",
            "airbench94",
            "--seeds",
            "2",
            "--epochs",
            "0.5",
            "--batch-size",
            "100",
            "--tta",
            "1",
            "--device",
            "cpu",
        ]
    )
    assert args.handler(args) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert [line.split(":")[0] for line in lines if line.startswith("seed ")] == [
        "seed 0",
        "seed 1",
    ]
    assert any(line.startswith("recipe airbench94: 0.5 epochs, batches of 100;") for line in lines)
    match = RESULT_LINE.fullmatch(lines[-1])
    assert match and 0 <= float(match[1]) <= 1 and float(match[2]) > 0


def test_python_m_labutils_speedrun_is_wired(capsys, data_root):
    code = cli.main(["speedrun", "--root", str(data_root), *SHORT_CPU_RUN])
    lines = capsys.readouterr().out.strip().splitlines()
    assert code == 0 and RESULT_LINE.fullmatch(lines[-1])
    assert any(line.startswith("recipe cpu: 0.5 epochs") for line in lines)  # the default on CPU


@pytest.mark.slow
def test_speedrun_compare_runs_the_published_recipe_beside_the_labs(capsys, data_root):
    code = cli.main(
        [
            "speedrun",
            "--root",
            str(data_root),
            "--compare",
            "--seeds",
            "2",
            *SHORT_CPU_RUN,
        ]
    )
    lines = capsys.readouterr().out.strip().splitlines()
    assert code == 0
    # Back to back on each seed: the published recipe, then the lab's.
    runs = [line.split()[:3] for line in lines if " seed " in line and "test_acc" in line]
    assert runs == [
        ["airbench94_muon", "seed", "0:"],
        ["cpu", "seed", "0:"],
        ["airbench94_muon", "seed", "1:"],
        ["cpu", "seed", "1:"],
    ]
    assert lines[-3].startswith("airbench94_muon  mean_test_acc=")
    assert lines[-2].startswith("cpu              mean_test_acc=")
    ratio = re.fullmatch(
        r"cpu against airbench94_muon: ([0-9.]+)x the time, ([-+][0-9.]+) points of test "
        r"accuracy \(2 seeds\)",
        lines[-1],
    )
    assert ratio and float(ratio[1]) > 0


def test_speedrun_compare_needs_another_recipe(capsys, data_root):
    code = cli.main(
        ["speedrun", "--root", str(data_root), "--compare", "--recipe", "airbench94_muon"]
    )
    assert code == 2 and "another recipe" in capsys.readouterr().err
