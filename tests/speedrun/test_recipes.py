"""airbench's recipes (``labutils.speedrun.recipes``): which tricks each named recipe uses,
and which one runs unless told."""

from dataclasses import replace

from labutils.speedrun import network, recipes


def test_the_cpu_recipe_is_airbench94_muon_with_narrower_groups_and_the_default_on_cpus():
    recipe = recipes.RECIPES["cpu"]
    assert replace(recipe, widths=recipes.WIDTHS) == recipes.RECIPES["airbench94_muon"]
    model = network.build_speed_net("cpu", recipe)
    assert [group.conv2.out_channels for group in model.groups] == [64, 192, 192]
    assert model.logit_scale == 1 / 192 and model.head.in_features == 192
    assert recipes.default_recipe("cpu") == "cpu"
    assert recipes.default_recipe("cuda") == "airbench94_muon"
