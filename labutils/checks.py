"""Value checks for notebook parameters, command-line options and function arguments.

The one place where the lab says what a valid number or choice is: every other module uses these,
and this module imports nothing of labutils. A wrong value stops with its name and the fix.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable


class ParameterError(ValueError):
    """A parameter with a value the lab cannot use; the message names it and the fix."""


def check_choice(name: str, value, choices: Iterable) -> None:
    """``value`` must be one of ``choices``."""
    choices = tuple(choices)
    if value not in choices:
        raise ParameterError(f"{name} = {value!r} is not valid: choose one of {choices}.")


def check_int(name: str, value, minimum: int = 1, allow_none: bool = False) -> None:
    """``value`` must be a whole number >= ``minimum`` (or None when allowed)."""
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ParameterError(f"{name} = {value!r} is not valid: use a whole number >= {minimum}.")


def check_positive(name: str, value, allow_zero: bool = False, allow_none: bool = False) -> None:
    """``value`` must be a finite number > 0 (>= 0 with ``allow_zero``; None when allowed)."""
    if value is None and allow_none:
        return
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Real)
        or not math.isfinite(value)
        or not (value >= 0 if allow_zero else value > 0)
    ):
        bound = ">= 0" if allow_zero else "> 0"
        raise ParameterError(f"{name} = {value!r} is not valid: use a finite number {bound}.")


def check_bool(name: str, value) -> None:
    """``value`` must be True or False."""
    if not isinstance(value, bool):
        raise ParameterError(f"{name} = {value!r} is not valid: use True or False.")
