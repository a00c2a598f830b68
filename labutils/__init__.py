"""Helpers for the CIFAR-10 lab: data, models, training, plots and the batch runner.

Import the submodules by name, for example ``from labutils import data, models``.
Importing the package has no side effects: no seed is set, no file or network is touched.
"""

__version__ = "0.1.0"
