"""What a run will cost, measured on a few steps: the model, the loader and the random state
are left as they were, and the words multiply runs, epochs and seconds."""

import pytest
import torch
from torch import nn

from labutils import loaders, models
from labutils.engine import timing


def tiny_conv_net() -> nn.Module:
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten(), nn.Linear(4 * 30 * 30, 10))


def random_batches(count: int, batch_size: int = 8):
    images = torch.randn(count * batch_size, 3, 32, 32)
    labels = torch.arange(count * batch_size) % 10
    return [
        (images[start : start + batch_size], labels[start : start + batch_size])
        for start in range(0, count * batch_size, batch_size)
    ]


def test_measure_epoch_seconds_leaves_model_loader_and_random_state_as_they_were():
    images = torch.randint(0, 256, (40, 32, 32, 3), dtype=torch.uint8)
    loader = loaders.TensorLoader(images, torch.arange(40) % 10, 8, shuffle=True, augment=True)
    loader.set_epoch(3)
    model = models.MLP(hidden=(16,))
    weights = {name: tensor.clone() for name, tensor in model.state_dict().items()}
    random_state = torch.get_rng_state()
    seconds = timing.measure_epoch_seconds(model, loader, steps=2, device="cpu", precision="fp32")
    assert 0 < seconds < 60
    assert all(torch.equal(model.state_dict()[name], weights[name]) for name in weights)
    assert loader.epoch == 3
    assert torch.equal(torch.get_rng_state(), random_state)


def test_measure_epoch_seconds_trains_one_warm_up_step_and_the_timed_ones():
    batches = random_batches(3)

    class CountingBatches:
        drawn = 0

        def __len__(self):
            return 3

        def __iter__(self):  # the measurement cycles through the loader: 3 batches per pass
            for batch in batches:
                CountingBatches.drawn += 1
                yield batch

    timing.measure_epoch_seconds(tiny_conv_net(), CountingBatches(), steps=4, device="cpu")
    assert CountingBatches.drawn == 5


def test_measure_epoch_seconds_refuses_zero_steps():
    with pytest.raises(ValueError, match="steps"):
        timing.measure_epoch_seconds(tiny_conv_net(), random_batches(2), steps=0)


def test_measure_evaluation_seconds_scales_the_timed_batches_to_the_loader():
    seconds = timing.measure_evaluation_seconds(
        tiny_conv_net(), random_batches(5), batches=2, device="cpu", precision="fp32"
    )
    assert 0 < seconds < 60


def test_time_steps_times_the_first_call_apart_from_the_others():
    calls = []
    first, mean = timing.time_steps(lambda: calls.append(1), 3, torch.device("cpu"))
    assert len(calls) == 4 and first >= 0 and mean >= 0


def test_describe_cost_multiplies_runs_epochs_and_seconds():
    assert (
        timing.describe_cost(20, 95.0, runs=2)
        == "2 runs x 20 epochs x 95.0 s = about 63 min on this machine"
    )
    assert timing.describe_cost(1, 0.4) == "1 epoch x 0.4 s = about 0.4 s on this machine"
    assert timing.describe_cost(20, 600.0).endswith("about 3.3 h on this machine")
    assert timing.describe_cost(0.5, 10.0).startswith("0.5 epochs x 10.0 s")
