"""Checkpoints: what a run saves, reading it back, rebuilding the model, which runs may resume.

The runs are the lab's MLP, one or two epochs on 20 random images on the CPU: a second each.
"""

import json

import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from labutils import models, runs, train
from labutils.engine import checkpoints

MLP_META = {"model_name": "mlp", "model_kwargs": {"hidden": [16]}}


@pytest.fixture
def images_and_labels():
    generator = torch.Generator().manual_seed(0)
    return torch.randn(20, 3, 32, 32, generator=generator), torch.arange(20) % 10


@pytest.fixture
def loader(images_and_labels):
    return DataLoader(TensorDataset(*images_and_labels), batch_size=10)


def fit_mlp(loader, out_dir, **kwargs):
    """Train a fresh small MLP into ``out_dir``; return the model."""
    torch.manual_seed(0)
    model = models.build_model("mlp", hidden=[16])
    settings = dict(
        epochs=1,
        max_lr=1e-2,
        device="cpu",
        precision="fp32",
        progress=False,
        out_dir=out_dir,
        meta=MLP_META,
    )
    train.fit_one_cycle(model, loader, loader, **{**settings, **kwargs})
    return model


# --------------------------------------------------------------------------- what is saved


def test_the_run_folder_names_are_defined_once():
    assert runs.CHECKPOINT_FILE is checkpoints.CHECKPOINT_FILE == "model.pt"
    assert runs.HISTORY_FILE is checkpoints.HISTORY_FILE == "history.json"


def test_checkpoint_loads_with_weights_only_and_rebuilds_the_model(
    loader, images_and_labels, tmp_path
):
    model = fit_mlp(loader, tmp_path, epochs=2)

    checkpoint = torch.load(tmp_path / "model.pt", weights_only=True)
    assert checkpoint["epoch"] == 2 and checkpoint["step"] == 0
    assert checkpoint["meta"]["model_name"] == "mlp"
    assert checkpoint["meta"]["training"]["epochs"] == 2
    optimizer = torch.optim.Adam(model.parameters())
    optimizer.load_state_dict(checkpoint["optimizer"])
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, 0.01, total_steps=4)
    scheduler.load_state_dict(checkpoint["scheduler"])

    rebuilt = checkpoints.load_trained_model(tmp_path / "model.pt")
    assert not rebuilt.training
    images, _ = images_and_labels
    model.eval()
    assert torch.equal(rebuilt(images), model(images))


def test_history_json_is_the_history_the_checkpoint_holds(loader, tmp_path):
    fit_mlp(loader, tmp_path, epochs=2)
    history = json.loads((tmp_path / "history.json").read_text())
    assert history == checkpoints.load_checkpoint(tmp_path / "model.pt")["history"]
    assert [record["epoch"] for record in history] == [1, 2]


@pytest.mark.parametrize(
    "model_name, precision, memory_format",
    [
        ("mlp", "fp32", "contiguous"),
        ("cnn", "fp32", "channels_last"),
        ("cnn", "bf16", "channels_last"),
    ],
)
def test_the_checkpoint_records_the_precision_and_memory_format_training_used(
    model_name, precision, memory_format, loader, tmp_path
):
    model = models.build_model(model_name)
    train.fit_one_cycle(
        model,
        loader,
        loader,
        1,
        1e-3,
        device="cpu",
        precision=precision,
        out_dir=tmp_path,
        progress=False,
    )
    training = checkpoints.training_arguments(tmp_path)
    assert (training["device"], training["precision"], training["memory_format"]) == (
        "cpu",
        precision,
        memory_format,
    )
    assert f"memory_format={memory_format}" in training["runtime"]


# --------------------------------------------------------------------------- reading back


def test_load_checkpoint_explains_a_bare_state_dict(tmp_path):
    torch.save(models.build_model("mlp", hidden=[16]).state_dict(), tmp_path / "weights.pt")
    with pytest.raises(ValueError, match="bare state_dict"):
        checkpoints.load_checkpoint(tmp_path / "weights.pt")


def test_load_checkpoint_refuses_a_file_that_is_not_a_checkpoint(tmp_path):
    (tmp_path / "notes.pt").write_text("not a checkpoint")
    with pytest.raises(ValueError, match="notes.pt"):
        checkpoints.load_checkpoint(tmp_path / "notes.pt")


def test_load_checkpoint_names_a_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.pt"):
        checkpoints.load_checkpoint(tmp_path / "missing.pt")


def test_load_trained_model_needs_the_model_name_in_meta(loader, tmp_path):
    fit_mlp(loader, tmp_path, meta={})
    with pytest.raises(ValueError, match="model_name"):
        checkpoints.load_trained_model(tmp_path / "model.pt")


# --------------------------------------------------------------------------- resume


def test_resume_without_a_checkpoint_names_the_missing_path(loader, tmp_path):
    with pytest.raises(FileNotFoundError, match="model.pt"):
        fit_mlp(loader, tmp_path, resume=True)


def test_resume_with_different_epochs_is_refused(loader, tmp_path):
    fit_mlp(loader, tmp_path, epochs=1)
    with pytest.raises(ValueError, match="epochs: checkpoint has 1, this call has 2"):
        fit_mlp(loader, tmp_path, epochs=2, resume=True)


def test_resume_with_a_different_model_name_is_refused(loader, tmp_path):
    fit_mlp(loader, tmp_path, meta={"model_name": "cnn"})
    with pytest.raises(ValueError, match="model_name"):
        fit_mlp(loader, tmp_path, meta={"model_name": "mlp"}, resume=True)


def test_resume_may_change_the_precision_which_changes_speed_not_the_schedule(loader, tmp_path):
    fit_mlp(loader, tmp_path, epochs=1)
    fit_mlp(loader, tmp_path, epochs=1, precision="bf16", resume=True)
    assert len(json.loads((tmp_path / "history.json").read_text())) == 1
