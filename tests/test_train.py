"""Training: the one-cycle schedule, clipping, learning, divergence, interruption and exact resume.

Everything runs on the CPU with tiny synthetic tensors, so the whole file takes seconds. What a
checkpoint holds, and which runs may resume from it, is in test_checkpoints.py.
"""

import json
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from labutils import models, train
from labutils.course import profiles
from labutils.engine import checkpoints

HISTORY_KEYS = {
    "epoch",
    "lr",
    "train_loss",
    "train_acc",
    "test_loss",
    "test_acc",
    "seconds",
    "images_per_second",
}
TIMING_KEYS = {"seconds", "images_per_second"}


# --------------------------------------------------------------------------- tiny data and models


def colour_images(count, size=32, seed=0):
    """Images of 10 classes, each a flat colour of its own plus noise: easy to learn."""
    generator = torch.Generator().manual_seed(seed)
    palette = torch.randn(10, 3, generator=torch.Generator().manual_seed(1234))
    labels = torch.arange(count) % 10
    noise = 0.3 * torch.randn(count, 3, size, size, generator=generator)
    return palette[labels][:, :, None, None] + noise, labels


def loader_of(images, labels, batch_size):
    return DataLoader(TensorDataset(images, labels), batch_size=batch_size, shuffle=False)


class ShuffledBatches:
    """Like our TensorLoader: reshuffled and 'augmented' from a generator seeded by the epoch."""

    def __init__(self, images, labels, batch_size, seed=0):
        self.images, self.labels, self.batch_size, self.seed = images, labels, batch_size, seed
        self.epoch = 0

    def set_epoch(self, epoch):
        self.epoch = epoch

    def __len__(self):
        return -(-len(self.labels) // self.batch_size)

    def __iter__(self):
        generator = torch.Generator().manual_seed(1000 * self.seed + self.epoch)
        self.epoch += 1  # a pass without set_epoch gets a fresh order, as with a DataLoader
        order = torch.randperm(len(self.labels), generator=generator)
        for start in range(0, len(order), self.batch_size):
            indices = order[start : start + self.batch_size]
            jitter = 0.1 * torch.randn(self.images[indices].shape, generator=generator)
            yield self.images[indices] + jitter, self.labels[indices]


class InterruptAfter:
    """Wraps a loader and presses Ctrl-C once: when asked for batch ``count + 1``."""

    def __init__(self, loader, count):
        self.loader, self.count, self.served = loader, count, 0

    def __getattr__(self, name):  # set_epoch, if the wrapped loader has one
        return getattr(self.loader, name)

    def __len__(self):
        return len(self.loader)

    def __iter__(self):
        for batch in self.loader:
            if self.served == self.count:
                self.served += 1
                raise KeyboardInterrupt
            self.served += 1
            yield batch


class CountingLoader:
    """Counts how many times it is iterated."""

    def __init__(self, batches):
        self.batches, self.passes = batches, 0

    def __len__(self):
        return len(self.batches)

    def __iter__(self):
        self.passes += 1
        return iter(self.batches)


class TinyConvNet(nn.Module):
    """Convolution, batch norm and dropout: everything whose state a resume must restore."""

    def __init__(self, width=4, dropout=0.2):
        super().__init__()
        self.layers = nn.Sequential(
            nn.Conv2d(3, width, 3, padding=1),
            nn.BatchNorm2d(width),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Dropout(dropout),
            nn.Linear(width, 10),
        )

    def forward(self, images):
        return self.layers(images)


class Amplified(nn.Module):
    """Multiplies a model's logits, and so its gradients, by a large factor."""

    def __init__(self, model, factor):
        super().__init__()
        self.model, self.factor = model, factor

    def forward(self, images):
        return self.model(images) * self.factor


class NanAfter(nn.Module):
    """Returns NaN logits from the training forward pass after ``count`` good ones."""

    def __init__(self, model, count, watch_file):
        super().__init__()
        self.model, self.count, self.watch_file, self.calls = model, count, watch_file, 0
        self.file_when_diverging = None

    def forward(self, images):
        logits = self.model(images)
        if not self.training:
            return logits
        self.calls += 1
        if self.calls <= self.count:
            return logits
        self.file_when_diverging = self.watch_file.read_bytes()
        return logits * float("nan")


def gradient_recorder(base):
    """An optimizer class that notes the gradients and the weight decay of every step."""

    class Recording(base):
        steps = []
        weight_decays = []

        def step(self, closure=None):
            grads = [
                p.grad.detach().clone()
                for g in self.param_groups
                for p in g["params"]
                if p.grad is not None
            ]
            Recording.steps.append(grads)
            Recording.weight_decays.append(self.param_groups[0]["weight_decay"])
            return super().step(closure)

    return Recording


def quiet_fit(model, train_loader, test_loader, **kwargs):
    """fit_one_cycle without progress bars, on the CPU (where runs repeat bit for bit)."""
    kwargs.setdefault("device", "cpu")
    kwargs.setdefault("precision", "fp32")  # the same on every CPU, with or without native bf16
    kwargs.setdefault("epochs", 1)
    kwargs.setdefault("max_lr", 1e-2)
    return train.fit_one_cycle(model, train_loader, test_loader, progress=False, **kwargs)


def without_timing(history):
    return [
        {key: value for key, value in record.items() if key not in TIMING_KEYS}
        for record in history
    ]


@pytest.fixture
def tiny_data():
    torch.manual_seed(0)
    images, labels = colour_images(24, size=8)
    return images, labels


@pytest.fixture
def tiny_loader(tiny_data):
    return loader_of(*tiny_data, batch_size=8)


# --------------------------------------------------------------------------- schedule and clipping


def test_one_cycle_starts_at_a_25th_of_max_lr_peaks_at_max_lr_and_ends_near_zero(tiny_data):
    one_batch = loader_of(*tiny_data, batch_size=24)  # one batch per epoch: one lr per record
    history = quiet_fit(TinyConvNet(), one_batch, one_batch, epochs=10, max_lr=0.1)
    lrs = [record["lr"] for record in history]
    assert lrs[0] == pytest.approx(0.1 / 25)
    assert max(lrs) == pytest.approx(0.1)
    assert lrs.index(max(lrs)) == 2  # 30% of 10 steps, counting from 0
    assert lrs[-1] == pytest.approx(0.1 / 25 / 1e4)
    assert all(a > b for a, b in zip(lrs[2:], lrs[3:]))


def test_weight_decay_is_given_to_the_optimizer(tiny_loader):
    recording = gradient_recorder(torch.optim.SGD)
    model = TinyConvNet()
    quiet_fit(model, tiny_loader, tiny_loader, weight_decay=5e-4, opt_func=recording)
    assert recording.weight_decays == [5e-4] * 3  # one epoch of three batches


def test_clipping_by_value_bounds_every_gradient(tiny_data):
    images, labels = tiny_data
    loader = loader_of(images, labels, batch_size=24)
    unclipped, clipped = gradient_recorder(torch.optim.Adam), gradient_recorder(torch.optim.Adam)
    torch.manual_seed(0)
    quiet_fit(Amplified(TinyConvNet(), 1e4), loader, loader, opt_func=unclipped)
    torch.manual_seed(0)
    quiet_fit(Amplified(TinyConvNet(), 1e4), loader, loader, grad_clip=0.01, opt_func=clipped)
    assert max(g.abs().max() for g in unclipped.steps[0]) > 1.0
    largest = max(g.abs().max() for g in clipped.steps[0])
    assert largest == pytest.approx(0.01)


def test_clipping_by_norm_bounds_the_overall_norm(tiny_data):
    images, labels = tiny_data
    loader = loader_of(images, labels, batch_size=24)
    recording = gradient_recorder(torch.optim.Adam)
    quiet_fit(
        Amplified(TinyConvNet(), 1e4),
        loader,
        loader,
        grad_clip=0.5,
        clip_mode="norm",
        opt_func=recording,
    )
    norm = torch.linalg.vector_norm(torch.stack([g.norm() for g in recording.steps[0]]))
    assert norm == pytest.approx(0.5, rel=1e-4)


# --------------------------------------------------------------------------- learning


def test_mlp_memorises_a_single_batch_of_random_labels():
    torch.manual_seed(0)
    images, labels = torch.randn(32, 3, 32, 32), torch.randint(0, 10, (32,))
    same_batch_100_times = [(images, labels)] * 100
    history = quiet_fit(models.MLP(), same_batch_100_times, [(images, labels)], max_lr=1e-3)
    assert history[-1]["test_loss"] < 0.05
    assert history[-1]["test_acc"] == 1.0


@pytest.mark.parametrize(
    "make_model",
    [lambda: models.MLP(hidden=(64,)), lambda: TinyConvNet(width=32, dropout=0.0)],
    ids=["mlp", "conv"],
)
def test_short_run_on_learnable_images_reaches_90_percent_test_accuracy(make_model):
    torch.manual_seed(0)
    train_images, train_labels = colour_images(500, seed=0)
    test_images, test_labels = colour_images(200, seed=1)
    history = quiet_fit(
        make_model(),
        loader_of(train_images, train_labels, 50),
        loader_of(test_images, test_labels, 100),
        epochs=3,
        max_lr=5e-2,
    )
    assert history[-1]["test_acc"] > 0.9


# --------------------------------------------------------------------------- divergence


def test_nan_loss_stops_the_run_naming_epoch_and_step(tiny_loader, tmp_path):
    model = NanAfter(TinyConvNet(), count=4, watch_file=tmp_path / "model.pt")
    with pytest.raises(train.TrainingDiverged) as error:
        quiet_fit(model, tiny_loader, tiny_loader, epochs=3, out_dir=tmp_path)
    message = str(error.value)
    assert "epoch 2, step 2 of 3" in message
    assert "nan" in message and "max_lr" in message and "grad_clip" in message


def test_divergence_leaves_the_last_good_checkpoint_as_it_was(tiny_loader, tmp_path):
    model = NanAfter(TinyConvNet(), count=4, watch_file=tmp_path / "model.pt")
    with pytest.raises(train.TrainingDiverged):
        quiet_fit(model, tiny_loader, tiny_loader, epochs=3, out_dir=tmp_path)
    assert (tmp_path / "model.pt").read_bytes() == model.file_when_diverging
    assert checkpoints.load_checkpoint(tmp_path / "model.pt")["epoch"] == 1
    assert len(json.loads((tmp_path / "history.json").read_text())) == 1


# --------------------------------------------------------------------------- interrupt and resume


def make_loader(kind, data):
    if kind == "set_epoch":
        return ShuffledBatches(*data, batch_size=8)
    return DataLoader(TensorDataset(*data), batch_size=8, shuffle=True)  # uses torch's global RNG


@pytest.mark.parametrize("kind", ["set_epoch", "dataloader"])
@pytest.mark.parametrize("interrupt_after", [4, 3], ids=["mid_epoch", "epoch_boundary"])
def test_interrupted_then_resumed_run_equals_an_uninterrupted_one(
    kind, interrupt_after, tiny_data, tmp_path
):
    test_loader = loader_of(*tiny_data, batch_size=12)
    settings = dict(epochs=3, max_lr=0.05, weight_decay=1e-4, grad_clip=1.0)

    torch.manual_seed(0)
    reference = TinyConvNet()
    expected = quiet_fit(
        reference,
        make_loader(kind, tiny_data),
        test_loader,
        out_dir=tmp_path / "reference",
        **settings,
    )

    torch.manual_seed(0)
    interrupted = InterruptAfter(make_loader(kind, tiny_data), interrupt_after)
    with pytest.raises(KeyboardInterrupt):
        quiet_fit(TinyConvNet(), interrupted, test_loader, out_dir=tmp_path / "run", **settings)
    torch.manual_seed(99)  # the resumed run must not depend on the caller's seed
    resumed = TinyConvNet()
    history = quiet_fit(
        resumed,
        make_loader(kind, tiny_data),
        test_loader,
        out_dir=tmp_path / "run",
        resume=True,
        **settings,
    )

    assert without_timing(history) == without_timing(expected)
    for (name, tensor), (_, expected_tensor) in zip(
        resumed.state_dict().items(), reference.state_dict().items()
    ):
        assert torch.equal(tensor, expected_tensor), name


def test_set_epoch_is_called_with_each_epoch_before_its_batches(tiny_data):
    class RecordingBatches(ShuffledBatches):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.calls = []

        def set_epoch(self, epoch):
            self.calls.append(epoch)
            super().set_epoch(epoch)

    loader = RecordingBatches(*tiny_data, batch_size=8)
    quiet_fit(TinyConvNet(), loader, loader_of(*tiny_data, batch_size=24), epochs=3)
    assert loader.calls == [0, 1, 2]


def test_ctrl_c_saves_a_checkpoint_says_how_to_resume_and_reraises(tiny_data, tmp_path, capsys):
    loader = InterruptAfter(ShuffledBatches(*tiny_data, batch_size=8), 4)
    with pytest.raises(KeyboardInterrupt):
        quiet_fit(TinyConvNet(), loader, loader.loader, epochs=2, out_dir=tmp_path)
    checkpoint = checkpoints.load_checkpoint(tmp_path / "model.pt")
    assert (checkpoint["epoch"], checkpoint["step"]) == (1, 1)
    assert checkpoint["partial_epoch"]["seen"] == 8
    assert len(json.loads((tmp_path / "history.json").read_text())) == 1
    output = capsys.readouterr().out
    assert str(tmp_path / "model.pt") in output and "resume=True" in output


def test_ctrl_c_without_out_dir_says_nothing_was_saved(tiny_data, capsys):
    loader = InterruptAfter(ShuffledBatches(*tiny_data, batch_size=8), 1)
    with pytest.raises(KeyboardInterrupt):
        quiet_fit(TinyConvNet(), loader, loader.loader)
    assert "Nothing was saved" in capsys.readouterr().out


def test_resuming_a_finished_run_returns_its_history_without_training(tiny_loader, tmp_path):
    first = quiet_fit(TinyConvNet(), tiny_loader, tiny_loader, out_dir=tmp_path)
    model = TinyConvNet()
    again = quiet_fit(model, tiny_loader, tiny_loader, out_dir=tmp_path, resume=True)
    assert again == first
    saved = checkpoints.load_checkpoint(tmp_path / "model.pt")["model"]
    assert all(torch.equal(model.state_dict()[name], saved[name]) for name in saved)


# --------------------------------------------------------------------------- history


def test_history_is_json_with_the_eight_keys_and_matches_history_json(tiny_loader, tmp_path):
    history = quiet_fit(TinyConvNet(), tiny_loader, tiny_loader, epochs=2, out_dir=tmp_path)
    assert json.loads(json.dumps(history)) == history
    assert json.loads((tmp_path / "history.json").read_text()) == history
    assert sorted(path.name for path in tmp_path.iterdir()) == ["history.json", "model.pt"]
    assert [record["epoch"] for record in history] == [1, 2]
    for record in history:
        assert set(record) == HISTORY_KEYS
        assert all(type(value) in (int, float) for value in record.values())
        assert 0 <= record["train_acc"] <= 1 and 0 <= record["test_acc"] <= 1
        assert record["seconds"] > 0 and record["images_per_second"] > 0


def test_test_metrics_are_those_of_evaluate_on_the_test_loader(tiny_data):
    images, labels = tiny_data
    test_images, test_labels = colour_images(30, size=8, seed=5)
    test_loader = loader_of(test_images, test_labels, 7)
    model = TinyConvNet()
    history = quiet_fit(model, loader_of(images, labels, 8), test_loader, epochs=1)
    scores = train.evaluate(model, test_loader)
    assert history[-1]["test_loss"] == pytest.approx(scores["loss"])
    assert history[-1]["test_acc"] == pytest.approx(scores["accuracy"])


def test_on_epoch_end_gets_the_history_so_far_after_every_epoch(tiny_loader):
    seen = []
    history = quiet_fit(
        TinyConvNet(),
        tiny_loader,
        tiny_loader,
        epochs=3,
        on_epoch_end=lambda so_far: seen.append(so_far),
    )
    assert [len(so_far) for so_far in seen] == [1, 2, 3]
    assert seen[-1] == history


def test_every_epoch_prints_a_summary_line_even_without_progress_bars(tiny_loader, capsys):
    quiet_fit(TinyConvNet(), tiny_loader, tiny_loader, epochs=2)
    output = capsys.readouterr().out
    assert output.count("device=") == 1
    for epoch in (1, 2):
        assert f"epoch {epoch}/2" in output
    assert "train_loss" in output and "test_acc" in output


# --------------------------------------------------------------------------- argument checks


@pytest.mark.parametrize(
    "bad, named",
    [
        (dict(epochs=0), "epochs"),
        (dict(epochs=1.5), "epochs"),
        (dict(max_lr=0), "max_lr"),
        (dict(max_lr=-0.1), "max_lr"),
        (dict(max_lr=float("nan")), "max_lr"),
        (dict(weight_decay=-1e-4), "weight_decay"),
        (dict(grad_clip=0), "grad_clip"),
        (dict(grad_clip=-1.0), "grad_clip"),
        (dict(clip_mode="max"), "clip_mode"),
        (dict(precision="fp8"), "precision"),
        (dict(device="tpu"), "device"),
        (dict(resume=True), "out_dir"),
        (dict(meta={"transform": object()}), "meta"),
    ],
)
def test_bad_arguments_are_refused_before_any_training(bad, named, tiny_loader, capsys):
    model = TinyConvNet()
    weights = {name: tensor.clone() for name, tensor in model.state_dict().items()}
    with pytest.raises(ValueError, match=named):
        quiet_fit(model, tiny_loader, tiny_loader, **bad)
    assert all(torch.equal(model.state_dict()[name], weights[name]) for name in weights)
    assert "epoch 1/" not in capsys.readouterr().out


def test_an_empty_train_loader_is_refused(tiny_loader):
    with pytest.raises(ValueError, match="train_loader is empty"):
        quiet_fit(TinyConvNet(), [], tiny_loader)


def test_a_bad_argument_is_named_with_its_value(tiny_loader):
    with pytest.raises(ValueError, match=r"max_lr = -0\.1 is not valid: use a finite number > 0"):
        quiet_fit(TinyConvNet(), tiny_loader, tiny_loader, max_lr=-0.1)


def test_an_out_dir_that_cannot_be_created_is_named(tiny_loader, tmp_path):
    (tmp_path / "a_file").write_text("")
    impossible = tmp_path / "a_file" / "run"
    with pytest.raises(ValueError, match="out_dir .*a_file"):
        quiet_fit(TinyConvNet(), tiny_loader, tiny_loader, out_dir=impossible)


# --------------------------------------------------------------------------- the caller's process

TRAIN_IN_A_FRESH_PROCESS = """
import torch
from labutils import runtime, train
from labutils.engine import timing

model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 10))
batches = [(torch.randn(4, 3, 2, 2), torch.arange(4))]
train.fit_one_cycle(model, batches, batches, 1, 1e-3, device="cpu", precision="fp32",
                    progress=False)
timing.measure_epoch_seconds(model, batches, steps=1, device="cpu", precision="fp32")
print("malloc settings changed:", runtime.keep_freed_memory.cache_info().currsize > 0)
"""


def test_training_leaves_the_memory_allocator_of_the_caller_as_it_was():
    # keep_freed_memory (mallopt) is the command line's and the notebooks' choice, not the
    # library's: a process that imports labutils and trains keeps glibc's default thresholds.
    result = subprocess.run(
        [sys.executable, "-c", TRAIN_IN_A_FRESH_PROCESS],
        check=True,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert "malloc settings changed: False" in result.stdout, result.stdout


# --------------------------------------------------------------------------- evaluate


def test_evaluate_goes_through_the_loader_exactly_once(tiny_data):
    images, labels = tiny_data
    model = TinyConvNet().eval()
    loader = CountingLoader([(images[:10], labels[:10]), (images[10:], labels[10:])])
    scores = train.evaluate(model, loader)
    assert loader.passes == 1
    with torch.no_grad():
        logits = model(images)
    assert scores["loss"] == pytest.approx(F.cross_entropy(logits, labels).item(), rel=1e-5)
    assert scores["accuracy"] == pytest.approx((logits.argmax(1) == labels).float().mean().item())


def test_evaluate_leaves_the_model_in_the_mode_it_found(tiny_loader):
    model = TinyConvNet().train()
    train.evaluate(model, tiny_loader)
    assert model.training


# --------------------------------------------------------------------------- lr range test


def test_lr_range_test_restores_the_weights_and_suggests_a_tested_lr():
    torch.manual_seed(0)
    images, labels = colour_images(200)
    model = models.MLP(hidden=(32,))
    weights = {name: tensor.clone() for name, tensor in model.state_dict().items()}
    result = train.lr_range_test(
        model, loader_of(images, labels, 50), start_lr=1e-5, end_lr=10, num_steps=40
    )
    assert all(torch.equal(model.state_dict()[name], weights[name]) for name in weights)
    lrs = result["lrs"]
    assert len(lrs) == len(result["losses"]) <= 40
    assert lrs[0] == pytest.approx(1e-5) and all(a < b for a, b in zip(lrs, lrs[1:]))
    assert lrs[0] <= result["suggested_lr"] <= lrs[-1]


def test_lr_range_test_refuses_an_end_lr_below_the_start(tiny_loader):
    with pytest.raises(ValueError, match="end_lr"):
        train.lr_range_test(TinyConvNet(), tiny_loader, start_lr=1e-2, end_lr=1e-3)


# ------------------------------------------------------------------------- on a GPU, if any


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_training_on_cuda_learns_saves_and_resumes(tmp_path):
    torch.manual_seed(0)
    train_images, train_labels = colour_images(500, seed=0)
    test_loader = loader_of(*colour_images(200, seed=1), 100)
    loader = ShuffledBatches(train_images, train_labels, batch_size=50)
    with pytest.raises(KeyboardInterrupt):
        quiet_fit(
            TinyConvNet(width=32, dropout=0.0),
            InterruptAfter(loader, 15),
            test_loader,
            device="cuda",
            epochs=3,
            max_lr=5e-2,
            out_dir=tmp_path,
        )
    checkpoint = checkpoints.load_checkpoint(tmp_path / "model.pt")
    assert checkpoint["cuda_rng_state"] is not None
    history = quiet_fit(
        TinyConvNet(width=32, dropout=0.0),
        loader,
        test_loader,
        device="cuda",
        epochs=3,
        max_lr=5e-2,
        out_dir=tmp_path,
        resume=True,
    )
    assert [record["epoch"] for record in history] == [1, 2, 3]
    assert history[-1]["test_acc"] > 0.9


def history_of(accuracies):
    return [
        {"epoch": index + 1, "lr": 0.01, "test_acc": accuracy}
        for index, accuracy in enumerate(accuracies)
    ]


def test_a_collapse_in_test_accuracy_is_flagged_even_without_a_nan():
    # The report's MLP: 43% after epoch 2, 14% by epoch 8, every loss finite.
    warning = train.collapse_warning(history_of([0.39, 0.43, 0.38, 0.31, 0.28, 0.22, 0.18, 0.14]))
    assert "fell from 43.0% (epoch 2) to 14.0% (epoch 8)" in warning and "max_lr" in warning


def test_ordinary_noise_in_test_accuracy_is_not_flagged():
    assert train.collapse_warning(history_of([0.55, 0.66, 0.62, 0.70])) is None


# --------------------------------------------------------------------------- the report's settings


@pytest.mark.parametrize("profile", profiles.PROFILE_NAMES)
@pytest.mark.parametrize("model", models.MODEL_NAMES)
def test_the_report_preset_is_the_reports_settings_whatever_the_profile(profile, model):
    settings = profiles.training_settings(profile, model, preset="report")
    assert settings == profiles.REPORT_SETTINGS
    assert settings == dict(
        epochs=20,
        batch_size=64,
        max_lr=0.01,
        weight_decay=1e-4,
        grad_clip=None,
        augment=False,
        train_fraction=1.0,  # the whole training split
        compile=False,
    )  # as the report's runs trained


def test_an_unknown_preset_is_refused_by_name():
    with pytest.raises(ValueError, match="SETTINGS"):
        profiles.training_settings("cpu", "cnn", preset="paper")


# --------------------------------------------------------------------------- compiling


@pytest.mark.slow
def test_a_compiled_run_learns_as_the_eager_one_and_saves_plain_weights(tmp_path):
    """torch.compile (inductor) trains the same model: the same first-epoch scores to rounding,
    a checkpoint whose weights load into a plain model, and the choice in its record."""
    torch.manual_seed(0)
    train_images, train_labels = colour_images(200, size=8, seed=0)
    test_images, test_labels = colour_images(100, size=8, seed=1)
    histories = {}
    for compiled in (False, True):
        torch.manual_seed(0)
        model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 32), nn.ReLU(), nn.Linear(32, 10))
        histories[compiled] = quiet_fit(
            model,
            loader_of(train_images, train_labels, 50),
            loader_of(test_images, test_labels, 100),
            epochs=2,
            out_dir=tmp_path / str(compiled),
            compile_model=compiled,
        )
    for eager, compiled in zip(histories[False], histories[True]):
        assert compiled["test_acc"] == pytest.approx(eager["test_acc"], abs=0.02)
        assert compiled["train_loss"] == pytest.approx(eager["train_loss"], rel=1e-3)
    saved = checkpoints.load_checkpoint(tmp_path / "True" / "model.pt")
    assert not [name for name in saved["model"] if name.startswith("_orig_mod")]
    assert saved["meta"]["training"]["compiled"] is True
    assert checkpoints.training_arguments(tmp_path / "False")["compiled"] is False
