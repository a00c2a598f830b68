"""Run folders: run.json records what ran, and the comparison finds each run again."""

import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from labutils import models, runs, sources, train


@pytest.fixture
def loader():
    generator = torch.Generator().manual_seed(0)
    images, labels = torch.randn(20, 3, 32, 32, generator=generator), torch.arange(20) % 10
    return DataLoader(TensorDataset(images, labels), batch_size=10)


def train_and_record(model_name, precision, loader, folder) -> dict:
    """Train ``model_name`` for an epoch into ``folder``, write its run.json, read it back."""
    model = models.build_model(model_name)
    source = sources.DataSource("synthetic", folder / "data", verified=False)
    train.fit_one_cycle(
        model,
        loader,
        loader,
        1,
        1e-3,
        device="cpu",
        precision=precision,
        out_dir=folder,
        progress=False,
    )
    info = runs.run_info(model_name, source, model, {"epochs": 1}, folder, 0, 1.0)
    runs.save_run_info(folder, info)
    return runs.load_run(folder).info


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_run_json_records_the_precision_training_used_not_the_machines_default(
    precision, loader, tmp_path
):
    # Whatever this CPU would pick by default, one of the two runs was told otherwise.
    info = train_and_record("mlp", precision, loader, tmp_path)
    assert info["precision"] == precision and info["device"] == "cpu"
    assert f"precision={precision}" in info["runtime"]


@pytest.mark.parametrize(
    "model_name, memory_format", [("mlp", "contiguous"), ("cnn", "channels_last")]
)
def test_run_json_records_the_memory_format_of_its_own_model(
    model_name, memory_format, loader, tmp_path
):
    info = train_and_record(model_name, "fp32", loader, tmp_path)
    assert info["memory_format"] == memory_format
    assert info["runtime"].endswith(f"memory_format={memory_format}")


def test_find_runs_reads_every_run_folder_below_a_folder(loader, tmp_path):
    for name in ("mlp", "cnn"):
        train_and_record(name, "fp32", loader, tmp_path / name)
    found = runs.find_runs(tmp_path)
    assert [run.name for run in found] == ["cnn", "mlp"]
    assert all(run.checkpoint.is_file() and len(run.history) == 1 for run in found)
