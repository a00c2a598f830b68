"""airbench94's recipe (``labutils.speedrun``): each trick checked against its definition, a
short run on synthetic files that must learn, and the ``speedrun`` command's last line."""

import argparse
import math
import re
from dataclasses import replace

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from labutils import cli, data, sources, speedrun

TRAIN_PER_CLASS, TEST_PER_CLASS = 60, 20
RESULT_LINE = re.compile(r"mean_test_acc=(\d+\.\d+) mean_seconds=(\d+\.\d+)")


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    """Synthetic files in the official format: 600 training and 200 test images."""
    root = tmp_path_factory.mktemp("speedrun")
    data.write_synthetic_cifar10(root, TRAIN_PER_CLASS, TEST_PER_CLASS, seed=0)
    return root


@pytest.fixture(scope="module")
def speed_data(data_root):
    return speedrun.load_data(sources.DataSource("synthetic", data_root, verified=False))


def random_images(count, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (count, 32, 32, 3), dtype=torch.uint8, generator=generator)


# --------------------------------------------------------------------------- the whole recipe


def test_a_short_run_on_synthetic_data_learns(speed_data):
    result = speedrun.run_speedrun(speed_data, epochs=3, batch_size=100, tta_level=2, seed=0,
                                   device="cpu", progress=False)
    assert result["test_acc"] > 0.6 and result["test_acc_no_tta"] > 0.6  # chance is 0.1
    assert result["steps"] == 3 * (10 * TRAIN_PER_CLASS // 100)
    parts = result["seconds_whiten"] + result["seconds_train"] + result["seconds_tta"]
    assert result["seconds"] == pytest.approx(parts) and result["seconds"] > 0


def test_fractional_epochs_stop_at_the_rounded_up_step_count(speed_data):
    result = speedrun.run_speedrun(speed_data, epochs=0.5, batch_size=100, tta_level=0,
                                   device="cpu", progress=False)
    assert result["steps"] == math.ceil(0.5 * 6) and len(result["history"]) == 1
    assert result["test_acc"] == result["test_acc_no_tta"]


def test_a_batch_larger_than_the_training_set_is_refused_by_name(speed_data):
    with pytest.raises(ValueError, match="batch_size = 1024 .* 600 training images"):
        speedrun.run_speedrun(speed_data, epochs=1, batch_size=1024, device="cpu")


# --------------------------------------------------------------------------- the tricks


def test_whitening_layer_makes_its_patches_uncorrelated_with_unit_variance(speed_data):
    images = speedrun.to_network_input(speed_data.train_images[:200], channels_last=False)
    layer = speedrun.SpeedNet().whiten
    speedrun.init_whitening(layer, images)
    outputs = F.conv2d(images, layer.weight)  # every 2x2 patch, without the bias
    outputs = outputs.permute(0, 2, 3, 1).reshape(-1, layer.out_channels).double()
    half = layer.out_channels // 2
    assert torch.allclose(outputs[:, half:], -outputs[:, :half])  # the ± copies
    second_moment = outputs[:, :half].T @ outputs[:, :half] / len(outputs)
    assert torch.allclose(second_moment, torch.eye(half, dtype=torch.float64), atol=0.01)
    assert not layer.weight.requires_grad


def test_patch_second_moment_matches_torch_unfold():
    images = torch.randn(4, 3, 8, 8)
    patches = F.unfold(images, kernel_size=2).transpose(1, 2).reshape(-1, 12).double()
    expected = patches.T @ patches / len(patches)
    assert torch.allclose(speedrun.patch_second_moment(images, chunk=3), expected)


def test_schedule_rises_from_0_2_to_1_then_falls_to_0_07():
    total = 100
    warmup_end = int(total * 0.23)
    assert speedrun.lr_multiplier(0, total) == pytest.approx(0.2)
    assert speedrun.lr_multiplier(warmup_end, total) == pytest.approx(1.0)
    assert speedrun.lr_multiplier(total, total) == pytest.approx(0.07)
    values = [speedrun.lr_multiplier(step, total) for step in range(total + 1)]
    assert values.index(max(values)) == warmup_end


def test_nesterov_sgd_gives_batchnorm_biases_64x_the_lr_and_the_same_decay():
    model = speedrun.SpeedNet()
    optimizer, scheduler = speedrun.make_optimizer(speedrun.Recipe(), model, 1024, 100)
    biases, others = optimizer.param_groups
    assert optimizer.defaults["nesterov"] and optimizer.defaults["momentum"] == 0.85
    assert len(biases["params"]) == 6  # one per batch norm
    assert biases["lr"] == pytest.approx(64 * others["lr"])
    assert biases["lr"] * biases["weight_decay"] == pytest.approx(others["lr"] * others["weight_decay"])
    kilostep_scale = 1024 * (1 + 1 / (1 - 0.85))
    assert others["lr"] == pytest.approx(0.2 * 11.5 / kilostep_scale * 1024)  # step 0: 0.2 x lr


@pytest.mark.parametrize("shape", [(64, 576), (576, 64), (256, 2304)])
def test_orthogonalize_keeps_the_shape_and_brings_singular_values_near_one(shape):
    update = torch.randn(shape, generator=torch.Generator().manual_seed(0))
    update[:, 0] *= 30  # one direction far stronger than the rest, as in a real gradient
    result = speedrun.orthogonalize(update)
    assert result.shape == update.shape and result.dtype == update.dtype
    singular_values = torch.linalg.svdvals(result)
    assert singular_values.min() > 0.5 and singular_values.max() < 1.5
    assert torch.linalg.svdvals(update).max() / torch.linalg.svdvals(update).min() > 10


def test_muon_normalises_the_filters_then_takes_an_orthogonalised_step():
    torch.manual_seed(0)
    conv = nn.Conv2d(8, 16, 3, bias=False)
    optimizer = speedrun.Muon([dict(params=[conv.weight], lr=0.1, momentum=0.6,
                                    orthogonalize=True)])
    conv(torch.randn(4, 8, 10, 10)).square().mean().backward()
    normalised = conv.weight.detach() * 16 ** 0.5 / conv.weight.detach().norm()
    optimizer.step()
    step = (normalised - conv.weight.detach()).flatten(1) / 0.1
    singular_values = torch.linalg.svdvals(step)
    assert singular_values.min() > 0.4 and singular_values.max() < 1.6


def test_muon_takes_torch_sgd_steps_in_its_other_groups():
    torch.manual_seed(0)
    ours, reference = nn.Linear(5, 3), nn.Linear(5, 3)
    reference.load_state_dict(ours.state_dict())
    settings = dict(lr=0.05, momentum=0.85, weight_decay=0.01)
    optimizers = [speedrun.Muon([dict(params=list(ours.parameters()), **settings)]),
                  torch.optim.SGD(reference.parameters(), nesterov=True, **settings)]
    for _ in range(3):
        inputs = torch.randn(8, 5)
        for model, optimizer in zip((ours, reference), optimizers):
            optimizer.zero_grad()
            model(inputs).square().sum().backward()
            optimizer.step()
    for mine, theirs in zip(ours.parameters(), reference.parameters()):
        assert torch.allclose(mine, theirs, atol=1e-6)


def test_muon_recipe_scales_airbenchs_summed_loss_lrs_and_decays_them_to_zero():
    recipe = speedrun.RECIPES["airbench94_muon"]
    assert (recipe.epochs, recipe.batch_size, recipe.lookahead) == (8.0, 2000, False)
    model = speedrun.build_speed_net("cpu", recipe)
    assert model.logit_scale == 1 / 256
    assert model.head.weight.std().item() == pytest.approx(1.0, rel=1e-4)
    optimizer, scheduler = speedrun.make_optimizer(recipe, model, 2000, total_steps=100,
                                                   steps_per_epoch=10)
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


def test_the_cpu_recipe_is_airbench94_muon_with_narrower_groups_and_the_default_on_cpus():
    recipe = speedrun.RECIPES["cpu"]
    assert replace(recipe, widths=speedrun.WIDTHS) == speedrun.RECIPES["airbench94_muon"]
    model = speedrun.build_speed_net("cpu", recipe)
    assert [group.conv2.out_channels for group in model.groups] == [64, 192, 192]
    assert model.logit_scale == 1 / 192 and model.head.in_features == 192
    assert speedrun.default_recipe("cpu") == "cpu"
    assert speedrun.default_recipe("cuda") == "airbench94_muon"


def test_a_short_muon_run_on_synthetic_data_learns(speed_data):
    result = speedrun.run_speedrun(speed_data, epochs=3, batch_size=100, tta_level=1, seed=0,
                                   device="cpu", progress=False,
                                   recipe=speedrun.RECIPES["airbench94_muon"])
    assert result["test_acc"] > 0.6 and result["recipe"]["optimizer"] == "muon"


def test_lookahead_moves_the_slow_weights_and_resets_the_network():
    model = nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2))
    lookahead = speedrun.Lookahead(model)
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
    assert speedrun.lookahead_decay(0, 100) == 0
    assert speedrun.lookahead_decay(50, 100) == pytest.approx(0.95 ** 5 / 8)
    assert speedrun.lookahead_decay(100, 100) == pytest.approx(0.95 ** 5)


def test_odd_epochs_flip_exactly_the_images_the_even_epochs_did_not(monkeypatch):
    monkeypatch.setattr(speedrun, "TRANSLATE", 0)  # no shifts: each image comes back as it was
    images, labels = random_images(40), torch.arange(40)  # the label says which image it is
    data = speedrun.SpeedData(images, labels, images[:1], labels[:1])
    generator = torch.Generator().manual_seed(1)
    first_flips = torch.rand(40, generator=generator) < 0.5
    originals = speedrun.to_network_input(images, channels_last=False)
    flipped_by_epoch = []
    for epoch in (0, 1, 2):
        flipped = torch.zeros(40, dtype=torch.bool)
        for batch, index in speedrun.train_batches(data, 8, epoch, first_flips, generator, False):
            for image, i in zip(batch, index):
                assert torch.equal(image, originals[i]) or torch.equal(image, originals[i].flip(-1))
                flipped[i] = torch.equal(image, originals[i].flip(-1))
        flipped_by_epoch.append(flipped)
    assert torch.equal(flipped_by_epoch[0], first_flips)
    assert torch.equal(flipped_by_epoch[1], ~flipped_by_epoch[0])
    assert torch.equal(flipped_by_epoch[2], flipped_by_epoch[0])


def shifted(images, rows_and_columns):
    """Images moved by explicit indexing (edges mirrored): an independent reference for TTA."""
    index = torch.tensor(rows_and_columns)
    return images[:, :, index][:, :, :, index]


def test_tta_averages_mirrored_and_shifted_views():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten(), nn.Linear(4 * 30 * 30, 10)).eval()
    images = torch.randn(5, 3, 32, 32)
    with torch.no_grad():
        def mirrored(x):
            return 0.5 * model(x) + 0.5 * model(x.flip(-1))
        down_right = shifted(images, [1] + list(range(31)))      # pixel i shows pixel i - 1
        up_left = shifted(images, list(range(1, 32)) + [30])     # pixel i shows pixel i + 1
        expected = 0.5 * mirrored(images) + 0.25 * (mirrored(down_right) + mirrored(up_left))
        assert torch.allclose(speedrun.tta_logits(model, images, 0), model(images))
        assert torch.allclose(speedrun.tta_logits(model, images, 1), mirrored(images))
        assert torch.allclose(speedrun.tta_logits(model, images, 2), expected, atol=1e-5)


def test_predict_gives_one_row_per_image_in_any_batch_size():
    torch.manual_seed(0)
    model = speedrun.SpeedNet().eval()
    images = random_images(7)
    logits = speedrun.predict(model, images, tta_level=2, batch_size=3)
    assert logits.shape == (7, 10)
    with torch.no_grad():
        expected = speedrun.tta_logits(model, speedrun.to_network_input(images, False), 2)
    assert torch.allclose(logits, expected, atol=1e-5)


# --------------------------------------------------------------------------- cost estimates


def test_seconds_per_step_times_the_steps_after_one_warm_up_step():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten(), nn.Linear(4 * 30 * 30, 10))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    steps = []
    optimizer.register_step_post_hook(lambda *args: steps.append(1))
    before = model[0].weight.detach().clone()
    seconds = speedrun.seconds_per_step(model, 8, "cpu", optimizer=optimizer, calls=3)
    assert len(steps) == 1 + 3 and seconds > 0
    assert not torch.equal(model[0].weight, before)  # real steps: time a throwaway network


def test_seconds_per_recipe_step_runs_every_recipe_on_a_small_batch():
    for recipe in speedrun.RECIPES.values():
        assert speedrun.seconds_per_recipe_step(recipe, 4, "cpu", calls=1) > 0


def test_describe_cost_multiplies_runs_epochs_steps_and_seconds():
    line = speedrun.describe_cost(4, 5, 48, 0.5)
    assert line == "4 runs x 5 epoch(s) x 48 steps x 0.5 s = about 8 min of training steps"
    assert speedrun.describe_cost(1, 0.5, 3, 1.0).startswith("1 run x 0.5 epoch(s)")
    assert speedrun.describe_cost(1, 0.5, 3, 1.0).endswith("about 2 s of training steps")  # ceil
    assert " x 1 step x " in speedrun.describe_cost(2, 9, 1, 17.0)


@pytest.mark.parametrize("seconds, words", [(0.123, "0.12 s"), (38.4, "38 s"), (840, "14 min"),
                                            (5760, "1.6 h")])
def test_format_duration_picks_the_unit_a_person_reads(seconds, words):
    assert speedrun.format_duration(seconds) == words


# --------------------------------------------------------------------------- command line


def test_speedrun_command_ends_with_the_mean_accuracy_and_seconds(capsys, data_root):
    parser = argparse.ArgumentParser()
    speedrun.add_speedrun_command(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["speedrun", "--data", "auto", "--root", str(data_root),
                              "--recipe", "airbench94", "--seeds", "2", "--epochs", "0.5", "--batch-size", "100",
                              "--tta", "1", "--device", "cpu"])
    assert args.handler(args) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert [line.split(":")[0] for line in lines if line.startswith("seed ")] == \
        ["seed 0", "seed 1"]
    assert any(line.startswith("recipe airbench94: 0.5 epochs, batches of 100;") for line in lines)
    match = RESULT_LINE.fullmatch(lines[-1])
    assert match and 0 <= float(match[1]) <= 1 and float(match[2]) > 0


def test_python_m_labutils_speedrun_is_wired(capsys, data_root):
    code = cli.main(["speedrun", "--root", str(data_root), "--epochs", "0.5",
                     "--batch-size", "200", "--tta", "0", "--device", "cpu"])
    lines = capsys.readouterr().out.strip().splitlines()
    assert code == 0 and RESULT_LINE.fullmatch(lines[-1])
    assert any(line.startswith("recipe cpu: 0.5 epochs") for line in lines)  # the default on CPU


def test_muon_schedule_refuses_to_guess_the_epoch_length():
    recipe = speedrun.RECIPES["cpu"]
    model = speedrun.build_speed_net("cpu", recipe)
    with pytest.raises(ValueError, match="steps_per_epoch"):
        speedrun.make_optimizer(recipe, model, 2000, total_steps=100)
