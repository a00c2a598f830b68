"""Data-parallel training: torchrun with 2 gloo ranks on the CPU against one process.

Every test launches the real ``torchrun --standalone --nproc_per_node=2`` in a subprocess (with
a timeout, so a hang fails instead of blocking), on tiny synthetic files.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from labutils import loaders, sources
from labutils.course import cli
from labutils.engine import checkpoints, distributed

TORCHRUN = Path(sys.executable).with_name("torchrun")
TIMEOUT = 120  # seconds for one launch; a hang in a collective fails the test instead
# Two runs of the same sums in another order (a global batch as one sum, or as two halves
# added by gloo) agree to float32 rounding, which Adam's few steps do not blow up.
WEIGHT_TOLERANCE = 1e-5
# Per-rank batch norm (gloo has no SyncBatchNorm) normalises each half batch by its own
# statistics: close to one process, not equal. 100 test images: 0.1 is 10 of them.
ACCURACY_TOLERANCE = 0.1

# Trains the MLP without dropout (each rank draws its own dropout masks, one process draws
# another set), so that one process and two ranks compute the same function.
MLP_SCRIPT = """
import sys
from labutils import loaders, models, runtime, sources, train
from labutils.engine import distributed

root, out = sys.argv[1], sys.argv[2]
runtime.seed_everything(0)
with distributed.process_group("cpu") as device:
    source = sources.get_data_source(
        "synthetic", root, synthetic_train_per_class=20, synthetic_test_per_class=10
    )
    # 45 does not divide the 200 images: the last global batch of 20 tests the exact mean.
    train_loader, test_loader = loaders.make_loaders(source, 45, augment=True, device=device)
    model = models.MLP(dropout=0.0)
    train.fit_one_cycle(
        model, train_loader, test_loader, 1, 1e-3, grad_clip=0.1, device=device,
        precision="fp32", out_dir=out, progress=False,
    )
"""


# ``python -m labutils train`` with one rank's loss made NaN at one training step: the step's
# cross-entropy (the only one computed with gradients) is multiplied by NaN there.
NAN_ON_ONE_RANK = """
import os, runpy, sys
import torch
import torch.nn.functional as F

nan_rank, nan_call = int(sys.argv[1]), int(sys.argv[2])
cross_entropy, calls = F.cross_entropy, []

def cross_entropy_with_a_nan(*args, **kwargs):
    loss = cross_entropy(*args, **kwargs)
    if torch.is_grad_enabled():
        calls.append(1)
        if int(os.environ["RANK"]) == nan_rank and len(calls) == nan_call:
            loss = loss * float("nan")
    return loss

F.cross_entropy = cross_entropy_with_a_nan
sys.argv = ["labutils", *sys.argv[3:]]
runpy.run_module("labutils", run_name="__main__")
"""


def environment(**extra) -> dict:
    names = distributed.TORCHRUN_VARIABLES
    env = {name: value for name, value in os.environ.items() if name not in names}
    return {**env, "LABUTILS_PROGRESS": "0", "OMP_NUM_THREADS": "1", **extra}


def torchrun(*args, **extra_env) -> subprocess.CompletedProcess:
    command = [str(TORCHRUN), "--standalone", "--nproc_per_node=2", *map(str, args)]
    return subprocess.run(
        command, capture_output=True, text=True, timeout=TIMEOUT, env=environment(**extra_env)
    )


def train_arguments(root: Path, model: str, out: Path, epochs: int = 1) -> list[str]:
    return [
        "train",
        "--model",
        model,
        "--profile",
        "smoke",
        "--data",
        "synthetic",
        "--root",
        str(root),
        "--epochs",
        str(epochs),
        "--precision",
        "fp32",
        "--device",
        "cpu",
        "--out",
        str(out),
    ]


def max_weight_difference(first: Path, second: Path) -> float:
    weights = checkpoints.load_checkpoint(first / "model.pt")["model"]
    others = checkpoints.load_checkpoint(second / "model.pt")["model"]
    assert weights.keys() == others.keys()
    return max(
        (weights[name].double() - others[name].double()).abs().max().item() for name in weights
    )


@pytest.fixture(scope="module")
def smoke_root(tmp_path_factory) -> Path:
    """The smoke profile's synthetic files, written before any rank looks for them."""
    root = tmp_path_factory.mktemp("data")
    sources.get_data_source(
        "synthetic", root, synthetic_train_per_class=20, synthetic_test_per_class=10
    )
    return root


@pytest.fixture(scope="module")
def diverged_run(smoke_root, tmp_path_factory):
    """A 2-epoch MLP run on 2 ranks whose rank 1 alone gets a NaN loss at the start of epoch 2."""
    out = tmp_path_factory.mktemp("diverged")
    script = out.parent / "nan_on_one_rank.py"
    script.write_text(NAN_ON_ONE_RANK)
    start = time.perf_counter()
    steps_per_epoch = 4  # the smoke profile's 200 images in batches of 50
    result = torchrun(
        script, 1, steps_per_epoch + 1, *train_arguments(smoke_root, "mlp", out, epochs=2)
    )
    return result, out, time.perf_counter() - start


@pytest.mark.slow
def test_two_ranks_train_the_mlp_to_the_weights_of_one_process(smoke_root, tmp_path):
    script = tmp_path / "train_mlp.py"
    script.write_text(MLP_SCRIPT)
    alone, together = tmp_path / "alone", tmp_path / "together"
    single = subprocess.run(
        [sys.executable, str(script), str(smoke_root), str(alone)],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        env=environment(),
    )
    assert single.returncode == 0, single.stderr
    result = torchrun(script, smoke_root, together)
    assert result.returncode == 0, result.stderr
    difference = max_weight_difference(alone, together)
    print(f"largest weight difference, 2 ranks vs 1 process: {difference:.3g}")
    assert difference < WEIGHT_TOLERANCE
    first, second = (json.loads((run / "history.json").read_text())[0] for run in (alone, together))
    assert second["test_acc"] == first["test_acc"]
    assert second["train_loss"] == pytest.approx(first["train_loss"], abs=1e-5)


@pytest.mark.slow
def test_two_ranks_write_one_run_folder_and_match_one_process(smoke_root, tmp_path, capsys):
    """The CNN: no SyncBatchNorm on gloo, so accuracies close, and one set of files."""
    assert cli.main(train_arguments(smoke_root, "cnn", tmp_path / "alone")) == 0
    capsys.readouterr()
    out = tmp_path / "together"
    result = torchrun("-m", "labutils", *train_arguments(smoke_root, "cnn", out))
    assert result.returncode == 0, result.stderr
    assert sorted(path.name for path in out.iterdir()) == ["history.json", "model.pt", "run.json"]
    assert result.stdout.count("epoch 1/1") == 1  # rank 0 alone prints progress
    assert result.stdout.count("batch norm per process") == 1
    info = json.loads((out / "run.json").read_text())
    assert (info["world_size"], info["backend"], info["batch_norm"]) == (2, "gloo", "per-rank")
    first, second = (
        json.loads((tmp_path / run / "history.json").read_text()) for run in ("alone", "together")
    )
    assert len(second) == 1
    print(
        f"test accuracy: 1 process {first[0]['test_acc']:.3f}, 2 ranks {second[0]['test_acc']:.3f}"
    )
    assert abs(second[0]["test_acc"] - first[0]["test_acc"]) <= ACCURACY_TOLERANCE


@pytest.mark.slow
def test_a_nan_on_one_rank_stops_every_rank_with_advice(diverged_run):
    result, out, seconds = diverged_run
    assert result.returncode != 0
    # Each rank reached the same decision at the same step and said why.
    assert result.stderr.count("error: training diverged at epoch 2, step 1 of 4") == 2
    assert "try a lower max_lr" in result.stderr
    assert "The checkpoint of epoch 1" in result.stderr
    assert len(json.loads((out / "history.json").read_text())) == 1
    print(f"diverged run stopped after {seconds:.1f} s")


@pytest.mark.slow
def test_a_resumed_two_rank_run_matches_an_uninterrupted_one(smoke_root, diverged_run, tmp_path):
    _, diverged_out, _ = diverged_run
    resumed, whole = tmp_path / "resumed", tmp_path / "whole"
    shutil.copytree(diverged_out, resumed)
    result = torchrun("-m", "labutils", *train_arguments(smoke_root, "mlp", resumed, 2), "--resume")
    assert result.returncode == 0, result.stderr
    assert "1 of 2 epochs done" in result.stdout
    result = torchrun("-m", "labutils", *train_arguments(smoke_root, "mlp", whole, 2))
    assert result.returncode == 0, result.stderr
    difference = max_weight_difference(resumed, whole)
    print(f"largest weight difference, resumed vs uninterrupted: {difference:.3g}")
    assert difference == 0.0
    histories = [json.loads((run / "history.json").read_text()) for run in (resumed, whole)]
    for history in histories:
        for record in history:
            del record["seconds"], record["images_per_second"]
    assert histories[0] == histories[1]


@pytest.mark.slow
def test_ctrl_c_saves_once_and_stops_every_rank(smoke_root, tmp_path):
    out = tmp_path / "run"
    command = [str(TORCHRUN), "--standalone", "--nproc_per_node=2", "-m", "labutils"]
    process = subprocess.Popen(
        [*command, *train_arguments(smoke_root, "mlp", out, epochs=500)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=environment(),
        start_new_session=True,  # its own process group, as a terminal's Ctrl-C reaches it
    )
    try:
        lines = []
        while not any(line.startswith("epoch 1/500") for line in lines):
            lines.append(process.stdout.readline())
            assert lines[-1], "torchrun ended before the first epoch"
        os.killpg(process.pid, signal.SIGINT)
        stdout, _ = process.communicate(timeout=TIMEOUT)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    assert process.returncode != 0
    assert stdout.count("Interrupted at epoch") == 1  # rank 0 alone saves and says so
    saved = checkpoints.load_checkpoint(out / "model.pt")
    assert 1 <= saved["epoch"] < 500
    assert not (out / "run.json").exists()


def test_the_shards_of_every_batch_hold_each_image_once():
    images = torch.arange(7 * 32 * 32 * 3).reshape(7, 32, 32, 3).to(torch.uint8)
    labels = torch.arange(7)
    whole = loaders.TensorLoader(images, labels, 3, shuffle=True, augment=True, seed=1)
    shards = [
        loaders.TensorLoader(images, labels, 3, shuffle=True, augment=True, seed=1)
        for _ in range(2)
    ]
    for index, shard in enumerate(shards):
        shard.set_shard(index, 2)
    for batch, first, second in zip(whole, *shards, strict=True):
        assert torch.equal(torch.cat([first[1], second[1]]), batch[1])
        assert torch.equal(torch.cat([first[0], second[0]]), batch[0])  # same crops and flips


def test_a_global_batch_smaller_than_the_ranks_is_refused():
    loader = loaders.TensorLoader(torch.zeros(4, 32, 32, 3), torch.zeros(4), 1)
    with pytest.raises(ValueError, match="batch size 1 is smaller than the 2 processes"):
        loader.set_shard(0, 2)


def test_without_torchrun_train_uses_no_process_group():
    with distributed.process_group("cpu") as device:
        assert device == torch.device("cpu")
        assert not distributed.is_distributed()
        assert (distributed.rank(), distributed.world_size(), distributed.is_main()) == (0, 1, True)


# Each rank draws a dropout mask inside own_random_stream, then one number from the shared stream.
OWN_STREAMS_SCRIPT = """
import sys
import torch
from labutils.engine import distributed

out = sys.argv[1]
torch.manual_seed(0)
with distributed.process_group("cpu") as device:
    with distributed.own_random_stream(device):
        mask = torch.nn.functional.dropout(torch.ones(1000), p=0.5)
    after = torch.rand(1)
    torch.save({"mask": mask, "after": after}, f"{out}/rank{distributed.rank()}.pt")
"""


@pytest.mark.slow
def test_each_rank_draws_its_own_dropout_masks_from_one_shared_stream(tmp_path):
    script = tmp_path / "own_streams.py"
    script.write_text(OWN_STREAMS_SCRIPT)
    result = torchrun(script, tmp_path)
    assert result.returncode == 0, result.stderr
    ranks = [torch.load(tmp_path / f"rank{rank}.pt") for rank in (0, 1)]
    assert not torch.equal(ranks[0]["mask"], ranks[1]["mask"])  # two halves, two masks
    assert torch.equal(ranks[0]["after"], ranks[1]["after"])  # the shared stream moved alike
