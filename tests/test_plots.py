"""The figures: each returns a Figure with the expected axes and says what data it shows."""

import matplotlib

matplotlib.use("Agg")  # no window: before pyplot is imported anywhere in this module

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from labutils import data, figures, loaders, plots  # noqa: E402

LABEL = "SYNTHETIC data (not CIFAR-10)"
CLASSES = list(data.CLASSES)


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def train_split(synthetic_root):
    return data.load_cifar10(synthetic_root, "train", verify=False)


def titles(figure: Figure) -> str:
    """Every title in a figure (the figure's own and each axis'), joined."""
    parts = [figure._suptitle.get_text()] if figure._suptitle is not None else []
    return " | ".join(parts + [axis.get_title() for axis in figure.axes])


def a_history(epochs: int = 3) -> list[dict]:
    return [
        {
            "epoch": e,
            "lr": 0.01,
            "train_loss": 2.0 / e,
            "train_acc": 0.3 * e,
            "test_loss": 2.1 / e,
            "test_acc": 0.25 * e,
            "seconds": 1.0,
            "images_per_second": 100.0,
        }
        for e in range(1, epochs + 1)
    ]


def test_in_order_puts_the_given_order_first_then_the_others_as_given():
    names = ["resnet9", "wide cnn", "mlp", "a/cnn", "cnn"]
    assert plots.in_order(names, ("mlp", "cnn", "resnet9")) == [
        "mlp",
        "cnn",
        "resnet9",
        "wide cnn",
        "a/cnn",
    ]
    assert plots.in_order(names) == names  # no order: as given


def test_show_images_draws_one_axis_per_image_with_class_names(train_split):
    images, labels = train_split
    figure = plots.show_images(images[:10], labels[:10], CLASSES, ncols=8, data_label=LABEL)
    assert isinstance(figure, Figure)
    assert len(figure.axes) == 10
    assert LABEL in titles(figure)
    assert figure.axes[0].get_xlabel() == CLASSES[labels[0]]


def test_show_images_accepts_displayable_floats_and_marks_wrong_predictions(train_split):
    images, labels = train_split
    pictures = loaders.unnormalize(loaders.normalize(torch.as_tensor(images[:4])))
    predictions = torch.as_tensor(labels[:4]).clone()
    predictions[1] = (predictions[1] + 1) % 10
    figure = plots.show_images(
        pictures, torch.as_tensor(labels[:4]), CLASSES, predictions=predictions, data_label=LABEL
    )
    assert len(figure.axes) == 4
    colours = [axis.xaxis.label.get_color() for axis in figure.axes]
    assert colours[1] == plots.WRONG_COLOUR and colours[0] != plots.WRONG_COLOUR


def test_show_images_refuses_normalised_images_and_names_the_fix(train_split):
    batch = loaders.normalize(torch.as_tensor(train_split[0][:4]))
    with pytest.raises(ValueError, match=r"loaders\.unnormalize"):
        plots.show_images(batch, train_split[1][:4], CLASSES)
    with pytest.raises(ValueError, match=r"loaders\.unnormalize"):  # channels last, out of [0, 1]
        plots.show_images(batch.permute(0, 2, 3, 1), train_split[1][:4], CLASSES)


def test_show_images_refuses_images_it_cannot_interpret():
    with pytest.raises(ValueError, match="expected uint8 images"):
        plots.show_images(np.zeros((2, 3, 32, 32), dtype=np.uint8), [0, 1], CLASSES)


def test_plot_class_counts_draws_a_bar_per_class_and_split(train_split):
    _, labels = train_split
    figure = plots.plot_class_counts(
        {"train": labels, "test": labels[:50]}, CLASSES, data_label=LABEL
    )
    assert len(figure.axes) == 1
    assert len(figure.axes[0].patches) == 2 * len(CLASSES)
    assert LABEL in titles(figure)


def test_plot_histograms_draws_a_panel_per_entry():
    values = {"report block": torch.rand(1000), "ResidualBlock": torch.randn(1000)}
    figure = plots.plot_histograms(values, "What the branch adds", data_label=LABEL, log=True)
    assert len(figure.axes) == 2
    assert figure.axes[0].get_yscale() == "log"
    assert LABEL in titles(figure)


def test_plot_history_has_a_loss_and_an_accuracy_panel_per_model():
    figure = plots.plot_history(
        {"mlp": a_history(), "cnn": a_history(), "resnet9": a_history()}, data_label=LABEL
    )
    assert len(figure.axes) == 6
    assert LABEL in titles(figure)
    labels_and_legends = " ".join(
        [axis.get_ylabel() for axis in figure.axes]
        + [text.get_text() for axis in figure.axes for text in axis.get_legend().get_texts()]
    )
    assert "test accuracy" in labels_and_legends
    assert "val" not in labels_and_legends


def test_plot_history_draws_the_models_in_the_given_order():
    histories = {"resnet9": a_history(), "mlp": a_history(), "cnn": a_history()}
    figure = plots.plot_history(histories, order=("mlp", "cnn", "resnet9"))
    assert [axis.get_title() for axis in figure.axes[:3]] == ["mlp", "cnn", "resnet9"]


def test_plot_test_accuracy_draws_one_labelled_test_curve_per_model_in_order():
    histories = {"resnet9": a_history(3), "mlp": a_history(2), "cnn": a_history(3)}
    figure = plots.plot_test_accuracy(histories, data_label=LABEL, order=("mlp", "cnn", "resnet9"))
    assert len(figure.axes) == 1
    axis = figure.axes[0]
    assert [line.get_label() for line in axis.lines] == ["mlp", "cnn", "resnet9"]
    assert [text.get_text() for text in axis.get_legend().get_texts()] == ["mlp", "cnn", "resnet9"]
    np.testing.assert_allclose(axis.lines[0].get_ydata(), [25, 50])  # test_acc, in percent
    assert axis.get_xlabel() == "epoch" and "test accuracy" in axis.get_ylabel()
    assert LABEL in titles(figure)


def test_plot_lr_schedule_draws_one_curve():
    figure = plots.plot_lr_schedule([0.001, 0.01, 0.005, 0.0], steps_per_epoch=2)
    assert len(figure.axes) == 1
    assert len(figure.axes[0].lines) == 1


def test_plot_lr_range_test_uses_a_log_axis_and_marks_the_suggestion():
    figure = plots.plot_lr_range_test(
        [1e-5, 1e-4, 1e-3], [2.3, 2.0, 3.0], suggested_lr=1e-4, data_label=LABEL
    )
    assert len(figure.axes) == 1
    assert figure.axes[0].get_xscale() == "log"
    assert len(figure.axes[0].lines) == 2
    assert LABEL in titles(figure)


def test_confusion_matrix_counts_true_rows_and_predicted_columns():
    labels = [0, 0, 1, 2, 2, 2]
    predictions = [0, 1, 1, 2, 0, 2]
    expected = np.array([[1, 1, 0], [0, 1, 0], [1, 0, 2]])
    np.testing.assert_array_equal(plots.confusion_matrix(labels, predictions, 3), expected)


def test_confusion_matrix_refuses_out_of_range_classes():
    with pytest.raises(ValueError, match="predictions"):
        plots.confusion_matrix([0, 1], [0, 3], num_classes=3)


def test_plot_confusion_matrix_writes_a_number_in_every_cell():
    matrix = plots.confusion_matrix(np.arange(10), np.arange(10))
    figure = plots.plot_confusion_matrix(matrix, CLASSES, title="CNN", data_label=LABEL)
    assert len(figure.axes) == 1
    assert len(figure.axes[0].texts) == 100
    assert LABEL in titles(figure) and "CNN" in titles(figure)


def test_plot_per_class_accuracy_draws_a_bar_per_class_and_model():
    per_model = {"mlp": np.full(10, 0.4), "cnn": np.full(10, 0.7)}
    figure = plots.plot_per_class_accuracy(per_model, CLASSES, data_label=LABEL)
    assert len(figure.axes) == 1
    assert len(figure.axes[0].patches) == 20
    assert LABEL in titles(figure)


def test_plot_per_class_accuracy_lists_the_models_in_the_given_order():
    per_model = {"resnet9": np.full(10, 0.9), "mlp": np.full(10, 0.4), "cnn": np.full(10, 0.7)}
    figure = plots.plot_per_class_accuracy(per_model, CLASSES, order=("mlp", "cnn", "resnet9"))
    legend = [text.get_text() for text in figure.axes[0].get_legend().get_texts()]
    assert legend == ["mlp", "cnn", "resnet9"]


def test_save_figure_creates_the_folder_and_writes_a_png(tmp_path):
    figure = plots.plot_lr_schedule([0.1, 0.2])
    path = plots.save_figure(figure, tmp_path / "figures" / "deep" / "schedule.png")
    assert path.is_file() and path.stat().st_size > 0
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def a_jupyter_kernel(monkeypatch):
    """Make IPython report a running kernel, as it does inside Jupyter."""
    import IPython

    class Shell:
        kernel = object()

    monkeypatch.setattr(IPython, "get_ipython", lambda: Shell())


def test_live_display_needs_a_jupyter_kernel():
    assert not plots.live_display_available(progress=True)  # tests run without a kernel


def test_live_display_is_off_in_a_kernel_when_progress_is_off(monkeypatch):
    a_jupyter_kernel(monkeypatch)
    assert plots.live_display_available(progress=True)
    assert not plots.live_display_available(progress=False)  # papermill, nbval, the runner
    assert not plots.LiveHistoryPlot("cnn", progress=False).enabled


def test_live_history_plot_draws_nothing_without_a_live_display():
    live = plots.LiveHistoryPlot("cnn")
    open_figures = plt.get_fignums()
    live(a_history())
    assert plt.get_fignums() == open_figures and live.handle is None


def test_live_history_plot_shows_one_figure_then_updates_it(monkeypatch):
    from IPython import display

    class Handle:
        updates = []

        def update(self, figure):
            self.updates.append(figure)

    shown = []
    monkeypatch.setattr(
        display, "display", lambda figure, display_id: shown.append(figure) or Handle()
    )
    live = plots.LiveHistoryPlot("cnn", epochs=5, enabled=True)
    for epochs in (1, 2, 3):
        live(a_history(epochs))
    assert len(shown) == 1 and len(Handle.updates) == 2
    last = Handle.updates[-1]
    assert last.axes[0].get_xlim() == (0.5, 5.5)  # the whole run's width from the start
    assert len(last.axes[0].lines[0].get_xdata()) == 3
    assert not set(plt.get_fignums())  # closed: the inline backend must not show it twice


# --------------------------------------------------------------------------- figures for everyone


def every_kind_of_figure(train_split) -> dict[str, Figure]:
    images, labels = train_split
    matrix = plots.confusion_matrix(np.arange(10), np.arange(10))
    return {
        "images": plots.show_images(images[:4], labels[:4], CLASSES, data_label=LABEL),
        "counts": plots.plot_class_counts({"train": labels}, CLASSES),
        "per class": plots.plot_per_class_accuracy({"mlp": np.full(10, 0.4)}, CLASSES),
        "histograms": plots.plot_histograms({"a": torch.randn(50)}, "Values"),
        "history": plots.plot_history({"mlp": a_history()}),
        "test accuracy": plots.plot_test_accuracy({"mlp": a_history()}),
        "schedule": plots.plot_lr_schedule([0.1, 0.2]),
        "range test": plots.plot_lr_range_test([1e-4, 1e-3], [2.0, 1.0], suggested_lr=1e-4),
        "confusion": plots.plot_confusion_matrix(matrix, CLASSES),
    }


def test_every_figure_has_a_solid_white_background_for_dark_themes(train_split):
    for name, figure in every_kind_of_figure(train_split).items():
        assert figure.get_facecolor() == (1, 1, 1, 1), name  # opaque: not the theme's colour
        for axis in figure.axes:
            assert axis.get_facecolor() == (1, 1, 1, 1), name


def test_every_figure_describes_itself_as_its_text_form(train_split):
    for name, figure in every_kind_of_figure(train_split).items():
        assert repr(figure) == plots.describe_figure(figure), name
        assert not repr(figure).startswith("<Figure size"), name


def test_lines_and_bars_take_the_colour_blind_safe_palette_in_order():
    histories = {"mlp": a_history(), "cnn": a_history(), "resnet9": a_history()}
    figure = plots.plot_test_accuracy(histories)
    colours = [matplotlib.colors.to_hex(line.get_color()) for line in figure.axes[0].lines]
    assert colours == [colour.lower() for colour in figures.PALETTE[:3]]
    bars = plots.plot_per_class_accuracy({"mlp": np.full(10, 0.4)}, CLASSES)
    assert matplotlib.colors.to_hex(bars.axes[0].patches[0].get_facecolor()) == "#0072b2"


def test_the_description_names_the_title_the_axes_and_the_legend():
    figure = plots.plot_history({"mlp": a_history()}, data_label=LABEL)
    text = plots.describe_figure(figure)
    assert text.startswith(f"Loss and accuracy per epoch - {LABEL}.")
    assert "mlp: lines; loss (cross-entropy); legend: train loss, test loss" in text
    assert "panel 2: lines; train and test accuracy (%) against epoch" in text


def test_an_image_grid_is_described_by_its_captions(train_split):
    images, labels = train_split
    figure = plots.show_images(images[:3], labels[:3], CLASSES, title="Samples")
    expected = "; ".join(CLASSES[label] for label in labels[:3])
    assert plots.describe_figure(figure) == f"Samples. 3 images, captioned: {expected}."


def test_a_wrong_prediction_is_bold_as_well_as_coloured(train_split):
    images, labels = train_split
    predictions = (torch.as_tensor(labels[:2]) + torch.tensor([0, 1])) % 10
    figure = plots.show_images(images[:2], labels[:2], CLASSES, predictions=predictions)
    weights = [axis.xaxis.label.get_fontweight() for axis in figure.axes]
    assert weights == ["normal", "bold"]


def test_a_saved_figure_carries_its_description_for_alt_text(tmp_path):
    from PIL import Image

    figure = plots.plot_lr_schedule([0.1, 0.2])
    path = plots.save_figure(figure, tmp_path / "schedule.png")
    with Image.open(path) as image:
        assert image.text["Description"] == plots.describe_figure(figure)


def test_subplots_changes_no_global_setting():
    before = dict(matplotlib.rcParams)
    plots.subplots(2, 2)
    assert dict(matplotlib.rcParams) == before


def test_a_single_panel_is_described_under_its_own_title():
    figure = plots.plot_lr_schedule([0.1, 0.2])
    assert plots.describe_figure(figure) == (
        "Learning-rate schedule: lines; learning rate against step (batch)."
    )
