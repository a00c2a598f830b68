"""How every figure of the lab is made: the same look for all, and words for those who cannot
see it.

``subplots`` gives a solid white background (readable in a dark JupyterLab theme) and Okabe and
Ito's colour-blind-safe palette, and makes the figure's text form its description: a notebook
stores that text beside the picture, and the book of a run uses it as the picture's alt text.
``save_figure`` writes the description into the PNG too. A leaf: it imports no other part of
``labutils``, and it changes no global setting.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
from matplotlib.axes import Axes
from matplotlib.figure import Figure

SAVE_DPI = 120
# Okabe and Ito's palette: its colours stay apart under every common colour-vision deficiency.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000")
BACKGROUND = "white"  # solid, so black text stays readable in a dark JupyterLab theme
MAX_DESCRIBED_PANELS = 6  # alt text names the first panels, then counts the rest


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _describe_axis(axis: Axes, number: int) -> str:
    """What one panel shows: its title, the kind of marks, its axes, its legend."""
    kind = "an image" if axis.images else "bars" if axis.patches else "lines"
    parts = [f"{_one_line(axis.get_title()) or f'panel {number}'}: {kind}"]
    y_label, x_label = _one_line(axis.get_ylabel()), _one_line(axis.get_xlabel())
    if y_label or x_label:
        parts.append(" against ".join(label for label in (y_label, x_label) if label))
    legend = axis.get_legend()
    if legend is not None:
        parts.append("legend: " + ", ".join(text.get_text() for text in legend.get_texts()))
    return "; ".join(parts)


def describe_figure(figure: Figure) -> str:
    """A figure in words, for a reader who cannot see it: its title, then each panel."""
    title = _one_line(figure.get_suptitle())
    panels = [axis for axis in figure.axes if axis.get_visible()]
    if not title and len(panels) == 1:
        return _describe_axis(panels[0], 1) + "."  # its own title heads it
    title = title or "A figure"
    if len(panels) > 1 and all(axis.images and not axis.lines for axis in panels):
        captions = [_one_line(axis.get_xlabel() or axis.get_title()) for axis in panels]
        return f"{title}. {len(panels)} images, captioned: {'; '.join(captions)}."
    described = [
        _describe_axis(axis, number)
        for number, axis in enumerate(panels[:MAX_DESCRIBED_PANELS], start=1)
    ]
    if len(panels) > MAX_DESCRIBED_PANELS:
        described.append(f"and {len(panels) - MAX_DESCRIBED_PANELS} more panels")
    return ". ".join([title, *described]) + "."


class DescribedFigure(Figure):
    """A Figure whose text form is its description: a notebook stores that text beside the
    picture, and the book of a run (``course/book.py``) makes it the picture's alt text."""

    def __repr__(self) -> str:
        return describe_figure(self)


def subplots(nrows: int = 1, ncols: int = 1, **options) -> tuple[Figure, Any]:
    """``plt.subplots`` for the lab: a solid white background, the colour-blind-safe palette
    and a description as the figure's text form. Changes no global setting."""
    figure, axes = plt.subplots(
        nrows, ncols, FigureClass=DescribedFigure, facecolor=BACKGROUND, **options
    )
    for axis in figure.axes:
        axis.set_facecolor(BACKGROUND)
        axis.set_prop_cycle(color=PALETTE)
    return figure, axes


def save_figure(figure: Figure, path: str | os.PathLike) -> Path:
    """Save a figure as PNG (dpi 120, tight box), creating the folder; returns the path.

    The PNG carries the figure's description (``describe_figure``) as its ``Description``
    text, so the picture brings its alt text wherever it is copied (the book of a run reads it).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(
        path,
        dpi=SAVE_DPI,
        bbox_inches="tight",
        format="png",
        metadata={"Description": describe_figure(figure)},
    )
    return path
