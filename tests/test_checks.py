"""The value checks every module uses: a wrong value stops with its name and what to use."""

import math

import pytest

from labutils.checks import ParameterError, check_bool, check_choice, check_int, check_positive


def test_a_whole_number_below_the_minimum_is_named():
    with pytest.raises(ParameterError, match=r"EPOCHS = 0 is not valid: use a whole number >= 1"):
        check_int("EPOCHS", 0)


@pytest.mark.parametrize("value", [True, 2.0, "3"])
def test_a_whole_number_must_be_an_int(value):
    with pytest.raises(ParameterError, match="EPOCHS"):
        check_int("EPOCHS", value)


@pytest.mark.parametrize("value", [0, -1e-3, math.inf, math.nan, False])
def test_a_positive_number_is_finite_and_above_zero(value):
    with pytest.raises(ParameterError, match="MAX_LR"):
        check_positive("MAX_LR", value)


def test_zero_and_none_pass_only_when_allowed():
    check_positive("WEIGHT_DECAY", 0, allow_zero=True)
    check_positive("MAX_LR", None, allow_none=True)
    check_int("EPOCHS", None, allow_none=True)
    with pytest.raises(ParameterError):
        check_positive("MAX_LR", None)


def test_a_choice_lists_the_valid_ones():
    with pytest.raises(ParameterError, match=r"choose one of \('mlp', 'cnn'\)"):
        check_choice("MODEL", "vgg", ("mlp", "cnn"))


def test_a_flag_is_true_or_false():
    check_bool("VERIFY", False)
    with pytest.raises(ParameterError, match="use True or False"):
        check_bool("VERIFY", "yes")


def test_a_parameter_error_is_a_value_error():
    assert issubclass(ParameterError, ValueError)
