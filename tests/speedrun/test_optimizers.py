"""airbench's optimisers (``labutils.speedrun.optimizers``): the schedule, Nesterov SGD's parameter
groups, Muon checked against the SVD and against torch's SGD, and lookahead."""

import pytest
import torch
from torch import nn

from labutils.speedrun import network, optimizers, recipes

# --------------------------------------------------------------------------- Nesterov SGD


def test_schedule_rises_from_0_2_to_1_then_falls_to_0_07():
    total = 100
    warmup_end = int(total * 0.23)
    assert optimizers.lr_multiplier(0, total) == pytest.approx(0.2)
    assert optimizers.lr_multiplier(warmup_end, total) == pytest.approx(1.0)
    assert optimizers.lr_multiplier(total, total) == pytest.approx(0.07)
    values = [optimizers.lr_multiplier(step, total) for step in range(total + 1)]
    assert values.index(max(values)) == warmup_end


def test_nesterov_sgd_gives_batchnorm_biases_64x_the_lr_and_the_same_decay():
    model = network.SpeedNet()
    optimizer, scheduler = optimizers.make_optimizer(recipes.Recipe(), model, 1024, 100)
    biases, others = optimizer.param_groups
    assert optimizer.defaults["nesterov"] and optimizer.defaults["momentum"] == 0.85
    assert len(biases["params"]) == 6  # one per batch norm
    assert biases["lr"] == pytest.approx(64 * others["lr"])
    assert biases["lr"] * biases["weight_decay"] == pytest.approx(
        others["lr"] * others["weight_decay"]
    )
    kilostep_scale = 1024 * (1 + 1 / (1 - 0.85))
    assert others["lr"] == pytest.approx(0.2 * 11.5 / kilostep_scale * 1024)  # step 0: 0.2 x lr


# --------------------------------------------------------------------------- Muon


@pytest.mark.parametrize("shape", [(64, 576), (576, 64), (256, 2304)])
def test_orthogonalize_keeps_the_shape_and_brings_singular_values_near_one(shape):
    update = torch.randn(shape, generator=torch.Generator().manual_seed(0))
    update[:, 0] *= 30  # one direction far stronger than the rest, as in a real gradient
    result = optimizers.orthogonalize(update)
    assert result.shape == update.shape and result.dtype == update.dtype
    singular_values = torch.linalg.svdvals(result)
    assert singular_values.min() > 0.5 and singular_values.max() < 1.5
    assert torch.linalg.svdvals(update).max() / torch.linalg.svdvals(update).min() > 10


def test_muon_normalises_the_filters_then_takes_an_orthogonalised_step():
    torch.manual_seed(0)
    conv = nn.Conv2d(8, 16, 3, bias=False)
    optimizer = optimizers.Muon(
        [dict(params=[conv.weight], lr=0.1, momentum=0.6, orthogonalize=True)]
    )
    conv(torch.randn(4, 8, 10, 10)).square().mean().backward()
    normalised = conv.weight.detach() * 16**0.5 / conv.weight.detach().norm()
    optimizer.step()
    step = (normalised - conv.weight.detach()).flatten(1) / 0.1
    singular_values = torch.linalg.svdvals(step)
    assert singular_values.min() > 0.4 and singular_values.max() < 1.6


def test_muon_takes_torch_sgd_steps_in_its_other_groups():
    torch.manual_seed(0)
    ours, reference = nn.Linear(5, 3), nn.Linear(5, 3)
    reference.load_state_dict(ours.state_dict())
    settings = dict(lr=0.05, momentum=0.85, weight_decay=0.01)
    both_optimizers = [
        optimizers.Muon([dict(params=list(ours.parameters()), **settings)]),
        torch.optim.SGD(reference.parameters(), nesterov=True, **settings),
    ]
    for _ in range(3):
        inputs = torch.randn(8, 5)
        for model, optimizer in zip((ours, reference), both_optimizers):
            optimizer.zero_grad()
            model(inputs).square().sum().backward()
            optimizer.step()
    for mine, theirs in zip(ours.parameters(), reference.parameters()):
        assert torch.allclose(mine, theirs, atol=1e-6)


def test_muon_recipe_scales_airbenchs_summed_loss_lrs_and_decays_them_to_zero():
    recipe = recipes.RECIPES["airbench94_muon"]
    assert (recipe.epochs, recipe.batch_size, recipe.lookahead) == (8.0, 2000, False)
    model = network.build_speed_net("cpu", recipe)
    assert model.logit_scale == 1 / 256
    assert model.head.weight.std().item() == pytest.approx(1.0, rel=1e-4)
    optimizer, scheduler = optimizers.make_optimizer(
        recipe, model, 2000, total_steps=100, steps_per_epoch=10
    )
    whiten_bias, norm_biases, head, filters = optimizer.param_groups
    assert whiten_bias["params"][0] is model.whiten.bias and len(norm_biases["params"]) == 6
    assert head["params"][0] is model.head.weight and filters["orthogonalize"]
    assert norm_biases["lr"] == pytest.approx(0.053 * 2000) and filters["lr"] == 0.24
    assert head["lr"] * head["weight_decay"] == pytest.approx(2e-6 * 2000)  # decay per step
    lrs = []
    for _ in range(100):
        lrs.append([group["lr"] for group in optimizer.param_groups])
        optimizer.step()
        scheduler.step()
    assert lrs[15][0] == pytest.approx(0.053 * 2000 * 0.5)  # halfway through 3 epochs
    assert lrs[30][0] == 0 and lrs[50][3] == pytest.approx(0.12)
    assert [group["lr"] for group in optimizer.param_groups] == [0, 0, 0, 0]


def test_muon_schedule_refuses_to_guess_the_epoch_length():
    recipe = recipes.RECIPES["cpu"]
    model = network.build_speed_net("cpu", recipe)
    with pytest.raises(ValueError, match="steps_per_epoch"):
        optimizers.make_optimizer(recipe, model, 2000, total_steps=100)


# --------------------------------------------------------------------------- lookahead


def test_lookahead_moves_the_slow_weights_and_resets_the_network():
    model = nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2))
    lookahead = optimizers.Lookahead(model)
    start = {name: value.clone() for name, value in model.state_dict().items()}
    with torch.no_grad():
        model[0].weight.add_(1.0)
        model[1].running_mean.add_(2.0)
    trained = {name: value.clone() for name, value in model.state_dict().items()}
    lookahead.update(model, decay=0.75)
    for name in ("0.weight", "0.bias", "1.running_mean"):
        expected = 0.75 * start[name] + 0.25 * trained[name]
        assert torch.allclose(model.state_dict()[name], expected)
    synced = {name: value.clone() for name, value in model.state_dict().items()}
    with torch.no_grad():
        model[0].weight.add_(5.0)  # steps after the last update ...
    lookahead.update(model, decay=1.0)  # ... are dropped by the final sync
    assert torch.equal(model[0].weight, synced["0.weight"])
    assert model[1].num_batches_tracked == 0  # integers are not averaged


def test_lookahead_decay_grows_as_the_cube_of_progress():
    assert optimizers.lookahead_decay(0, 100) == 0
    assert optimizers.lookahead_decay(50, 100) == pytest.approx(0.95**5 / 8)
    assert optimizers.lookahead_decay(100, 100) == pytest.approx(0.95**5)
