"""What the series costs here: models and the speed probe, timed for real on this machine."""

import math

from labutils.course import costs


def test_the_speed_probe_times_a_training_step_here():
    seconds = costs.speed_probe("cpu", "fp32")
    assert 0 < seconds < 60 and math.isfinite(seconds)


def test_a_model_cost_on_a_slower_machine_scales_every_part():
    cost = costs.ModelCost("cnn", 64, 1e-3, 1000, 100, 1e-3, 2e-4, 4e-4, compile_seconds=10)
    slower = cost.slowed(2.0)
    assert slower.epoch_seconds() == 2 * cost.epoch_seconds()
    assert slower.fp32_test_pass_seconds == 2 * cost.fp32_test_pass_seconds
    assert slower.compile_seconds == 20 and slower.batch_size == 64
