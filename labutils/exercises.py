"""Exercise bookkeeping inside a notebook: which checks passed, and which version later cells use.

A notebook makes one ``Exercises()`` after its imports. Each graded check cell ends with
``exercises.passed("mlp")``, reached only when every ``assert`` above it held. A later cell that
needs the student's work asks ``exercises.choose("mlp", MyMLP, models.MLP)``: it gets the
student's version once its check passed and the reference otherwise, and says which, so an
unfinished notebook still runs to the end.
"""

from __future__ import annotations

from typing import TypeVar

T = TypeVar("T")


class Exercises:
    """The checks that passed in this notebook (in this kernel), by name."""

    def __init__(self) -> None:
        self.names: set[str] = set()

    def passed(self, name: str) -> None:
        """Record that the check called ``name`` passed, and tell the student."""
        self.names.add(name)
        print(f"Check passed: {name}.")

    def has_passed(self, name: str) -> bool:
        """Whether the check called ``name`` has passed in this kernel."""
        return name in self.names

    def choose(self, name: str, yours: T, reference: T) -> T:
        """``yours`` once the check ``name`` passed, else ``reference``; prints which one."""
        if self.has_passed(name):
            print(f"Using your {name}: its check passed.")
            return yours
        print(
            f"Using labutils' {name}: your version has not passed its check yet "
            f"(finish the exercise and run its check cell to use your own)."
        )
        return reference
