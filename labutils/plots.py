"""Figures for the lab: image grids, bars, histograms, training curves, confusion matrices.

Every function draws one figure and returns it; none calls ``plt.show()`` or changes global
settings. ``LiveHistoryPlot`` is the one exception: it shows the training curves itself,
redrawn in place after every epoch. Functions that draw data take ``data_label`` (for example
``source.label``) and put it in the title, so a figure always says what it was measured on;
those that draw several models take ``order`` (for example ``models.MODEL_NAMES``) and draw
them in that order.

Images come as stored (uint8) or already displayable; ``loaders.unnormalize`` turns
normalised network inputs back into pictures. Every figure is made by ``figures.subplots``
(a white background, a colour-blind-safe palette, alt text) and saved by
``figures.save_figure``; both are offered here too, as ``plots.subplots`` and
``plots.save_figure``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from labutils.figures import describe_figure, save_figure, subplots  # noqa: F401  (offered here)

WRONG_COLOUR = "#D55E00"  # vermillion (PALETTE's), always with bold type: never colour alone


def with_data_label(title: str, data_label: str | None) -> str:
    """``"title - data label"``, or the title alone when no label is given."""
    return f"{title} - {data_label}" if data_label else title


def in_order(names: Iterable[str], order: Sequence[str] = ()) -> list[str]:
    """The names found in ``order`` first, as ordered there; the others after, as given."""
    position = {name: index for index, name in enumerate(order)}
    return sorted(names, key=lambda name: position.get(name, len(position)))  # a stable sort


# --------------------------------------------------------------------------- images


def to_displayable(images) -> torch.Tensor:
    """uint8 [B, H, W, 3] (as stored) or float [B, H, W, 3] in [0, 1] -> float [B, H, W, 3].

    Normalised network inputs [B, 3, H, W] are refused: ``loaders.unnormalize`` undoes the
    normalisation it made, with the mean and std it used.
    """
    images = images if torch.is_tensor(images) else torch.as_tensor(np.asarray(images))
    images = images.detach().cpu()
    if images.ndim == 4 and images.shape[-1] == 3:
        if images.dtype == torch.uint8:
            return images.float() / 255
        if images.is_floating_point() and (
            images.numel() == 0 or (images.min() >= 0 and images.max() <= 1)
        ):
            return images.float()
    hint = (
        " These look like normalised network inputs: un-normalise them first with "
        "loaders.unnormalize(images)."
        if images.is_floating_point()
        else ""
    )
    raise ValueError(
        f"expected uint8 images [B, H, W, 3] or float images [B, H, W, 3] in [0, 1], "
        f"got {images.dtype} {tuple(images.shape)}.{hint}"
    )


def _as_int_array(values) -> np.ndarray:
    """Labels or predictions (list, numpy array or tensor) as a flat int64 numpy array."""
    if torch.is_tensor(values):
        values = values.detach().cpu().numpy()
    return np.asarray(values).astype(np.int64).ravel()


def show_images(
    images,
    labels,
    class_names,
    predictions=None,
    ncols: int = 8,
    data_label: str | None = None,
    title: str = "Images",
) -> Figure:
    """A grid of images with the class name under each; with predictions, "true / predicted"."""
    pictures = to_displayable(images)
    labels = _as_int_array(labels)
    predicted = _as_int_array(predictions) if predictions is not None else None
    count = len(pictures)
    if count == 0:
        raise ValueError("show_images got no images to show.")
    ncols = max(1, min(ncols, count))
    nrows = math.ceil(count / ncols)
    row_height = 1.55 if predicted is None else 1.9  # room for a two-line caption
    figure, axes = subplots(
        nrows, ncols, figsize=(1.4 * ncols, row_height * nrows + 0.35), squeeze=False
    )
    for index, axis in enumerate(axes.ravel()):
        if index >= count:
            figure.delaxes(axis)
            continue
        axis.imshow(pictures[index].numpy())
        axis.set_xticks([])
        axis.set_yticks([])
        caption, wrong = class_names[labels[index]], False
        if predicted is not None:
            caption = f"{caption} /\n{class_names[predicted[index]]}"
            wrong = predicted[index] != labels[index]
        axis.set_xlabel(
            caption,
            fontsize=8,
            color=WRONG_COLOUR if wrong else "black",
            fontweight="bold" if wrong else "normal",
        )
    heading = title if predicted is None else f"{title} (true / predicted, wrong in bold red)"
    figure.suptitle(with_data_label(heading, data_label), fontsize=10)
    figure.tight_layout()
    return figure


# --------------------------------------------------------------------------- bars


def _grouped_bars(axis: Axes, values_by_group: dict[str, np.ndarray], class_names) -> None:
    """One bar per group for each class, side by side."""
    positions = np.arange(len(class_names))
    width = 0.8 / max(1, len(values_by_group))
    for number, (name, values) in enumerate(values_by_group.items()):
        offset = (number - (len(values_by_group) - 1) / 2) * width
        axis.bar(positions + offset, values, width, label=name)
    axis.set_xticks(positions, class_names, rotation=45, ha="right")
    axis.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0))  # outside: bars fill the axes


def plot_class_counts(
    labels_by_split: dict[str, np.ndarray], class_names, data_label: str | None = None
) -> Figure:
    """Grouped bars: how many images of each class every split holds."""
    arrays = {split: _as_int_array(labels) for split, labels in labels_by_split.items()}
    counts = {
        f"{split} ({len(labels):,} images)": np.bincount(labels, minlength=len(class_names))
        for split, labels in arrays.items()
    }
    figure, axis = subplots(figsize=(8, 4))
    _grouped_bars(axis, counts, class_names)
    axis.set_ylabel("images")
    axis.set_title(with_data_label("Images per class", data_label))
    figure.tight_layout()
    return figure


def plot_per_class_accuracy(
    per_model: dict[str, np.ndarray],
    class_names,
    data_label: str | None = None,
    order: Sequence[str] = (),
) -> Figure:
    """Grouped bars: each model's test accuracy on each class (fractions in [0, 1])."""
    percents = {
        name: 100 * np.asarray(per_model[name], dtype=float) for name in in_order(per_model, order)
    }
    figure, axis = subplots(figsize=(8, 4))
    _grouped_bars(axis, percents, class_names)
    axis.set_ylabel("test accuracy (%)")
    axis.set_ylim(0, 100)
    axis.set_title(with_data_label("Test accuracy per class", data_label))
    figure.tight_layout()
    return figure


def plot_histograms(
    values_by_name: dict[str, np.ndarray],
    title: str,
    xlabel: str = "value",
    data_label: str | None = None,
    bins: int = 60,
    log: bool = False,
) -> Figure:
    """One histogram panel per entry, side by side, sharing the x axis (``log``: log counts)."""
    figure, axes = subplots(
        1, len(values_by_name), figsize=(4.5 * len(values_by_name), 3.2), squeeze=False, sharex=True
    )
    for axis, (name, values) in zip(axes[0], values_by_name.items(), strict=True):
        values = values.detach().cpu().numpy() if torch.is_tensor(values) else np.asarray(values)
        axis.hist(values.ravel(), bins=bins, log=log)
        axis.axvline(0, color="black", linewidth=0.8)
        axis.set_title(name, fontsize=10)
        axis.set_xlabel(xlabel)
    axes[0, 0].set_ylabel("count (log scale)" if log else "count")
    figure.suptitle(with_data_label(title, data_label))
    figure.tight_layout()
    return figure


# --------------------------------------------------------------------------- training curves


def _whole_epochs(axis: Axes, epochs: list[int]) -> None:
    """Ticks on whole epochs only; a single epoch would otherwise get ticks like 0.95 and 1.05."""
    axis.xaxis.set_major_locator(MaxNLocator(integer=True))
    if len(set(epochs)) == 1:
        axis.set_xticks(sorted(set(epochs)))


def plot_history(
    histories: dict[str, list[dict]], data_label: str | None = None, order: Sequence[str] = ()
) -> Figure:
    """Loss (top row) and accuracy (bottom row) per epoch, one column per model, train and test."""
    figure, axes = subplots(
        2, len(histories), figsize=(4 * len(histories), 6.5), squeeze=False, sharey="row"
    )
    for column, name in enumerate(in_order(histories, order)):
        history = histories[name]
        epochs = [record["epoch"] for record in history]
        loss_axis, accuracy_axis = axes[0, column], axes[1, column]
        for split in ("train", "test"):
            losses = [record[f"{split}_loss"] for record in history]
            percents = [100 * record[f"{split}_acc"] for record in history]
            loss_axis.plot(epochs, losses, "o-", label=f"{split} loss")
            accuracy_axis.plot(epochs, percents, "o-", label=f"{split} accuracy")
        loss_axis.set_title(name)
        accuracy_axis.set_xlabel("epoch")
        for axis in (loss_axis, accuracy_axis):
            _whole_epochs(axis, epochs)
            axis.grid(True, alpha=0.3)
            axis.legend(fontsize=8)
    axes[0, 0].set_ylabel("loss (cross-entropy)")
    axes[1, 0].set_ylabel("train and test accuracy (%)")
    figure.suptitle(with_data_label("Loss and accuracy per epoch", data_label))
    figure.tight_layout()
    return figure


def plot_test_accuracy(
    histories: dict[str, list[dict]], data_label: str | None = None, order: Sequence[str] = ()
) -> Figure:
    """Every model's test accuracy per epoch on one axis: one labelled line per model."""
    figure, axis = subplots(figsize=(6.5, 4))
    all_epochs = []
    for name in in_order(histories, order):
        epochs = [record["epoch"] for record in histories[name]]
        percents = [100 * record["test_acc"] for record in histories[name]]
        axis.plot(epochs, percents, "o-", label=name)
        all_epochs += epochs
    _whole_epochs(axis, all_epochs)
    axis.set_xlabel("epoch")
    axis.set_ylabel("test accuracy (%)")
    axis.grid(True, alpha=0.3)
    axis.legend(fontsize=8)
    axis.set_title(with_data_label("Test accuracy per epoch", data_label))
    figure.tight_layout()
    return figure


def live_display_available(progress: bool = True) -> bool:
    """Whether figures can be redrawn in place: ``progress`` on, in a Jupyter kernel.

    Pass ``runtime.progress_enabled()``: papermill, nbval and the batch runner switch progress
    off (LABUTILS_PROGRESS=0), so their saved notebooks keep the printed lines only. Scripts
    and tests have no kernel.
    """
    if not progress:
        return False
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and hasattr(shell, "kernel")


class LiveHistoryPlot:
    """Loss and accuracy curves that grow epoch by epoch, for ``fit_one_cycle(on_epoch_end=...)``.

    After each epoch it draws ``plot_history`` for the history so far and replaces the previous
    drawing (IPython's ``display_id``). Where no live display is available it draws nothing:
    the lines ``fit_one_cycle`` prints are then the whole record. ``epochs`` fixes the x axis to
    the whole run, so the curves grow into it. ``progress`` is ``runtime.progress_enabled()``
    (see ``live_display_available``); ``enabled`` overrides the whole decision.
    """

    def __init__(
        self,
        name: str,
        epochs: int | None = None,
        data_label: str | None = None,
        progress: bool = True,
        enabled: bool | None = None,
    ) -> None:
        self.name, self.epochs, self.data_label = name, epochs, data_label
        self.enabled = live_display_available(progress) if enabled is None else bool(enabled)
        self.handle = None

    def __call__(self, history: list[dict]) -> None:
        if not self.enabled:
            return
        from IPython import display

        figure = plot_history({self.name: history}, data_label=self.data_label)
        if self.epochs:
            for axis in figure.axes:
                axis.set_xlim(0.5, self.epochs + 0.5)
                axis.xaxis.set_major_locator(MaxNLocator(integer=True))
        if self.handle is None:
            self.handle = display.display(figure, display_id=True)
        else:
            self.handle.update(figure)
        plt.close(figure)  # shown through the handle; the inline backend must not show it again


def plot_lr_schedule(lrs: list[float], steps_per_epoch: int | None = None) -> Figure:
    """The learning rate at every optimisation step (in epochs when ``steps_per_epoch`` is set)."""
    steps = np.arange(len(lrs))
    figure, axis = subplots(figsize=(6, 3.5))
    if steps_per_epoch:
        axis.plot(steps / steps_per_epoch, lrs)
        axis.set_xlabel("epoch")
    else:
        axis.plot(steps, lrs)
        axis.set_xlabel("step (batch)")
    axis.set_ylabel("learning rate")
    axis.grid(True, alpha=0.3)
    axis.set_title("Learning-rate schedule")
    figure.tight_layout()
    return figure


def plot_lr_range_test(
    lrs, losses, suggested_lr: float | None = None, data_label: str | None = None
) -> Figure:
    """Smoothed training loss against the learning rate (log scale), with the suggestion marked."""
    figure, axis = subplots(figsize=(6, 3.5))
    axis.plot(lrs, losses)
    axis.set_xscale("log")
    if suggested_lr is not None:
        axis.axvline(
            suggested_lr,
            color=WRONG_COLOUR,
            linestyle="--",
            label=f"suggested lr {suggested_lr:.2g}",
        )
        axis.legend()
    axis.set_xlabel("learning rate (log scale)")
    axis.set_ylabel("smoothed training loss")
    axis.grid(True, alpha=0.3, which="both")
    axis.set_title(with_data_label("Learning-rate range test", data_label))
    figure.tight_layout()
    return figure


# --------------------------------------------------------------------------- confusion matrix


def confusion_matrix(labels, predictions, num_classes: int = 10) -> np.ndarray:
    """Counts [num_classes, num_classes]: row = true class, column = predicted class."""
    labels, predictions = _as_int_array(labels), _as_int_array(predictions)
    if labels.shape != predictions.shape:
        raise ValueError(f"got {labels.size} labels but {predictions.size} predictions.")
    for name, values in (("labels", labels), ("predictions", predictions)):
        if values.size and (values.min() < 0 or values.max() >= num_classes):
            raise ValueError(
                f"{name} must be in 0..{num_classes - 1}, found {values.min()}..{values.max()}."
            )
    flat = np.bincount(labels * num_classes + predictions, minlength=num_classes**2)
    return flat.reshape(num_classes, num_classes)


def plot_confusion_matrix(
    matrix, class_names, title: str = "", data_label: str | None = None
) -> Figure:
    """Rows true, columns predicted, each row as percentages of that class, numbers in cells."""
    counts = np.asarray(matrix, dtype=float)
    row_sums = counts.sum(axis=1, keepdims=True)
    percents = 100 * np.divide(counts, row_sums, out=np.zeros_like(counts), where=row_sums > 0)
    figure, axis = subplots(figsize=(6.5, 6))
    axis.imshow(percents, cmap="Blues", vmin=0, vmax=100)
    for (row, column), value in np.ndenumerate(percents):
        axis.text(
            column,
            row,
            f"{value:.0f}",
            ha="center",
            va="center",
            fontsize=8,
            color="white" if value > 50 else "black",
        )
    ticks = np.arange(len(class_names))
    axis.set_xticks(ticks, class_names, rotation=45, ha="right")
    axis.set_yticks(ticks, class_names)
    axis.set_xlabel("predicted class")
    axis.set_ylabel("true class")
    heading = f"{title or 'Confusion matrix'}: % of each true class"
    axis.set_title(with_data_label(heading, data_label))
    figure.tight_layout()
    return figure
