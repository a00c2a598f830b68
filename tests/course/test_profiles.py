"""Profiles: which one a notebook runs with, from its parameter and $LABUTILS_PROFILE."""

import pytest

from labutils.course import profiles


@pytest.mark.parametrize("value", ["", "  "])
def test_an_empty_environment_variable_reads_as_unset(monkeypatch, value):
    monkeypatch.setenv(profiles.PROFILE_ENV, value)
    assert profiles.choose_profile("auto") == "auto"
    assert profiles.choose_profile("cpu") == "cpu"


def test_a_parameter_left_at_auto_takes_the_environment_variable(monkeypatch, capsys):
    monkeypatch.setenv(profiles.PROFILE_ENV, "smoke")
    assert profiles.choose_profile("auto") == "smoke"
    assert "from LABUTILS_PROFILE" in capsys.readouterr().out


def test_a_parameter_wins_over_the_environment_variable_and_says_so(monkeypatch, capsys):
    monkeypatch.setenv(profiles.PROFILE_ENV, "smoke")
    assert profiles.choose_profile("cpu") == "cpu"
    said = capsys.readouterr().out
    assert "'cpu', from the parameter" in said and "LABUTILS_PROFILE='smoke' is ignored" in said


def test_the_same_profile_twice_says_nothing(monkeypatch, capsys):
    monkeypatch.setenv(profiles.PROFILE_ENV, "smoke")
    assert profiles.choose_profile("smoke") == "smoke"
    monkeypatch.delenv(profiles.PROFILE_ENV)
    assert profiles.choose_profile("gpu") == "gpu"
    assert capsys.readouterr().out == ""
