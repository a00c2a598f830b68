"""Profiles: how big a run is, defined once for the notebooks, the runner and the CLI.

| profile | data | meant for |
|---|---|---|
| smoke | tiny synthetic | CI: "does every cell run" |
| cpu | CIFAR-10 | a laptop's CPU |
| gpu | CIFAR-10 | a GPU: as many epochs as the report (20), with better settings |

When a ``cpu`` or ``gpu`` run ends up on synthetic data (no CIFAR-10 here, no network), it
trains on the profile's ``synthetic`` settings instead, sized to finish in minutes.

The ``gpu`` profile is not the report's recipe: only its 20 epochs are the same. It trains in
batches of 256 (the report: 64), at max_lr 1e-3, 2e-3 and 4e-3 for the MLP, the CNN and
ResNet9 (the report: 0.01 for all three, at which its MLP collapsed), with random crops and
flips for the two convolutional nets (the report: no augmentation), and it clips gradients at
0.1 (the report defined that value but never passed it). The report's own settings are
``REPORT_SETTINGS``, the preset ``"report"`` of ``training_settings``, for every model.
"""

from __future__ import annotations

import copy
import os
from typing import TYPE_CHECKING

from labutils.checks import check_choice

if TYPE_CHECKING:
    from labutils.sources import DataSource

PROFILE_NAMES = ("smoke", "cpu", "gpu")
PROFILE_ENV = "LABUTILS_PROFILE"  # make test and the self-check run notebooks with "smoke"
PRESETS = ("profile", "report")  # a profile's settings for the model, or the report's own

# The report's settings, as its runs trained: 20 epochs, Adam, batches of 64, max_lr 0.01,
# weight decay 1e-4, no augmentation and no clipping (it defined grad_clip = 0.1 but never
# passed it to its training loop).
REPORT_SETTINGS = dict(
    epochs=20,
    batch_size=64,
    max_lr=0.01,
    weight_decay=1e-4,
    grad_clip=None,
    augment=False,
    train_fraction=1.0,
    compile=False,
)


def _settings(epochs, batch_size, max_lr, weight_decay=1e-4, grad_clip=0.1, augment=True):
    return dict(
        epochs=epochs,
        batch_size=batch_size,
        max_lr=max_lr,
        weight_decay=weight_decay,
        grad_clip=grad_clip,
        augment=augment,
        train_fraction=1.0,  # of the training split, each epoch (a time budget may lower it)
        compile=False,  # train through torch.compile (a time budget turns it on where it pays)
    )


PROFILES = {
    "smoke": {
        "data": "synthetic",
        "synthetic_per_class": (20, 10),
        # Batches of 50 divide the 200 training images: every step has the same shape, so
        # the kernels picked for the first step serve the rest.
        "models": {
            "mlp": _settings(epochs=2, batch_size=50, max_lr=1e-3),
            "cnn": _settings(epochs=1, batch_size=50, max_lr=2e-3),
            "resnet9": _settings(epochs=1, batch_size=50, max_lr=2e-3),
        },
        "range_test_steps": 20,
        # A time budget's plan times each model this long at least (the default, 1 s, keeps
        # a pause of the machine out of a real plan; the smoke plan only has to be made).
        "min_timed_seconds": 0.05,
        "divergence_demo": dict(images=200, epochs=2, batch_size=50),
        "augmentation_demo": dict(images=100, test_images=100, epochs=2, batch_size=50),
    },
    "cpu": {
        "data": "auto",
        "synthetic_per_class": (200, 50),
        # On real data the series is planned into this many minutes on the machine it runs
        # on (labutils.course.budget): the epochs below set the proportions between the
        # models, and what the budget buys when it fits them exactly (about an hour on 2 cores
        # with native bf16, about 2 hours in fp32). ResNet9: 87.0% after 8 epochs on
        # cifar10-dev, 87.5% after 9.
        "budget_minutes": 60,
        # Batch sizes that are a speed choice, not a lesson: the plan keeps the fastest here.
        "batch_choices": {"cnn": (128, 64)},
        # Models a budget's plan tries through torch.compile (benchmarks/compile.py, 2-core Xeon
        # with AMX, bf16: the CNN 1.40x faster per step after 54 s of compiling; ResNet9 0.93x).
        "compile_candidates": ("cnn",),
        "models": {
            "mlp": _settings(epochs=12, batch_size=256, max_lr=1e-3, augment=False),
            "cnn": _settings(epochs=10, batch_size=128, max_lr=4e-3),
            "resnet9": _settings(epochs=9, batch_size=256, max_lr=1e-2),
        },
        "synthetic_models": {
            "mlp": _settings(epochs=4, batch_size=64, max_lr=1e-3),
            "cnn": _settings(epochs=3, batch_size=64, max_lr=2e-3),
            "resnet9": _settings(epochs=2, batch_size=64, max_lr=2e-3),
        },
        "range_test_steps": 100,
        "divergence_demo": dict(images=10000, epochs=4, batch_size=64),
        # Enough epochs on a tenth of the images for a net without augmentation to overfit.
        "augmentation_demo": dict(images=5000, test_images=2000, epochs=6, batch_size=128),
    },
    "gpu": {
        "data": "auto",
        "synthetic_per_class": (500, 100),
        "models": {
            "mlp": _settings(epochs=20, batch_size=256, max_lr=1e-3, augment=False),
            "cnn": _settings(epochs=20, batch_size=256, max_lr=2e-3),
            "resnet9": _settings(epochs=20, batch_size=256, max_lr=4e-3),
        },
        "synthetic_models": {
            "mlp": _settings(epochs=5, batch_size=64, max_lr=1e-3),
            "cnn": _settings(epochs=5, batch_size=64, max_lr=2e-3),
            "resnet9": _settings(epochs=5, batch_size=64, max_lr=2e-3),
        },
        "range_test_steps": 100,
        "divergence_demo": dict(images=50000, epochs=20, batch_size=64),
        "augmentation_demo": dict(images=10000, test_images=10000, epochs=15, batch_size=128),
    },
}


def resolve_profile(name: str, cuda_available: bool | None = None) -> str:
    """``auto`` becomes ``gpu`` when CUDA is available, else ``cpu``."""
    if name == "auto":
        if cuda_available is None:
            import torch

            cuda_available = torch.cuda.is_available()
        return "gpu" if cuda_available else "cpu"
    check_choice("PROFILE", name, ("auto", *PROFILE_NAMES))
    return name


def choose_profile(parameter: str) -> str:
    """The profile a notebook runs with: its ``PROFILE`` parameter, else $LABUTILS_PROFILE.

    A parameter left at ``"auto"`` leaves the choice to the environment variable, where it is
    set and not empty; any other parameter (papermill's, or one typed into the cell) wins over
    it. Either way the notebook says where its profile came from.
    """
    variable = os.environ.get(PROFILE_ENV, "").strip()
    if not variable or variable == parameter:
        return parameter
    if parameter == "auto":
        print(f"PROFILE = {variable!r}, from {PROFILE_ENV} (the parameter is 'auto')")
        return variable
    print(f"PROFILE = {parameter!r}, from the parameter ({PROFILE_ENV}={variable!r} is ignored)")
    return parameter


def get_profile(name: str) -> dict:
    """A copy of a profile's settings (``auto`` resolved)."""
    return copy.deepcopy(PROFILES[resolve_profile(name)])


def training_settings(
    profile: str, model: str, synthetic: bool = False, preset: str = "profile"
) -> dict:
    """Epochs, batch size, max_lr, weight decay, clipping and augmentation for one model.

    ``preset="report"`` gives the report's settings (``REPORT_SETTINGS``) whatever the profile.
    """
    check_choice("SETTINGS", preset, PRESETS)
    settings = get_profile(profile)
    table = (
        settings.get("synthetic_models", settings["models"]) if synthetic else settings["models"]
    )
    check_choice("MODEL", model, tuple(table))
    return dict(REPORT_SETTINGS) if preset == "report" else table[model]


def open_data(
    profile: str, source: str = "auto", root=None, verify: bool = True, seed: int = 0
) -> DataSource:
    """The data a notebook or run uses under a profile (``smoke`` always uses tiny synthetic)."""
    from labutils import sources  # reads files with torch: `labutils check` never needs it

    settings = get_profile(profile)
    train_per_class, test_per_class = settings["synthetic_per_class"]
    if settings["data"] == "synthetic":
        source = "synthetic"
    return sources.get_data_source(
        source,
        root,
        verify=verify,
        seed=seed,
        synthetic_train_per_class=train_per_class,
        synthetic_test_per_class=test_per_class,
    )
