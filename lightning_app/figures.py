"""Figures of what the network sees and says: the lesson's ``view_classify``, grids of it, confusion matrices.

One place for all pictures: the TensorBoard callbacks and ``predict`` use the same functions. They are made with
matplotlib's object API (``Figure``), not pyplot: no backend is chosen or switched, so a notebook that imports the
app keeps its own, and no window ever opens.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from matplotlib.figure import Figure
from torchmetrics.classification import MulticlassConfusionMatrix

from lightning_app.runs.storage import replace_file

RIGHT, WRONG = "#2a9d4b", "#d1342f"


def displayable(image: torch.Tensor) -> np.ndarray:
    """A (C, H, W) image, uint8 or float in [0, 1], as an (H, W) or (H, W, 3) array for imshow."""
    image = image.detach().cpu()
    array = image.float().div(255) if image.dtype == torch.uint8 else image.float().clamp(0, 1)
    array = array.numpy()
    return array[0] if array.shape[0] == 1 else array.transpose(1, 2, 0)


def _draw(ax_image, ax_bars, image, probs, class_names, label, title):
    ax_image.imshow(displayable(image), cmap="gray" if image.shape[0] == 1 else None)
    ax_image.axis("off")
    predicted = int(np.argmax(probs))
    ok = label is None or label < 0 or predicted == label
    name = class_names[predicted]
    caption = f"{title + ': ' if title else ''}{name} ({probs[predicted]:.0%})"
    if not ok:
        caption += f"\ntrue: {class_names[label]}"
    ax_image.set_title(caption, fontsize=9, color="black" if ok else WRONG)
    colors = ["#9aa5b1"] * len(class_names)
    colors[predicted] = RIGHT if ok else WRONG
    if label is not None and 0 <= label < len(class_names) and not ok:
        colors[label] = RIGHT
    positions = np.arange(len(class_names))
    ax_bars.barh(positions, probs, color=colors)
    ax_bars.set_yticks(positions)
    ax_bars.set_yticklabels(class_names, fontsize=8)
    ax_bars.invert_yaxis()
    ax_bars.set_xlim(0, 1.0)
    ax_bars.set_title("Class probability", fontsize=9)


def view_classify(
    image: torch.Tensor, probs: Sequence[float], class_names: Sequence[str], label: int | None = None, title: str = ""
) -> Figure:
    """The lesson's ``view_classify``: the image beside a bar chart of its class probabilities.

    ``label`` (when known) marks a wrong prediction in red and the true class in green.
    """
    probs = np.asarray(probs, dtype=float)
    fig = Figure(figsize=(6, 3 + 0.1 * len(class_names)))
    ax_image, ax_bars = fig.subplots(ncols=2)
    _draw(ax_image, ax_bars, image, probs, list(class_names), label, title)
    fig.tight_layout()
    return fig


def prediction_grid(
    images: torch.Tensor,
    probs: torch.Tensor,
    class_names: Sequence[str],
    labels: torch.Tensor | None = None,
    titles: Sequence[str] | None = None,
    columns: int = 4,
) -> Figure:
    """Several ``view_classify`` panels in one figure, wrong predictions in red.

    Drawn on a single Axes (images by extent, bars by offset): about 3x faster than one Axes pair per panel,
    which matters when it is drawn after every validation.
    """
    n, k = len(images), len(class_names)
    columns = max(1, min(columns, n))
    rows = max(1, -(-n // columns))
    cell_w, cell_h = 2.7, 1.5
    fig = Figure(figsize=(cell_w * columns * 1.15, (cell_h + 0.02 * k) * rows * 1.25))
    ax = fig.add_axes((0, 0, 1, 1))
    ax.axis("off")
    probs = probs.detach().float().cpu().numpy()
    bar_h = 1.0 / k
    for i in range(n):
        r, c = divmod(i, columns)
        x0, y0 = c * cell_w, (rows - 1 - r) * cell_h
        image = displayable(images[i])
        ax.imshow(image, cmap="gray" if image.ndim == 2 else None, extent=(x0, x0 + 1, y0, y0 + 1))
        predicted = int(np.argmax(probs[i]))
        label = int(labels[i]) if labels is not None else -1
        ok = label < 0 or label == predicted
        colors = ["#9aa5b1"] * k
        colors[predicted] = RIGHT if ok else WRONG
        if not ok and label < k:
            colors[label] = RIGHT
        ys = y0 + 1 - bar_h * (np.arange(k) + 0.5)
        ax.barh(ys, probs[i], left=x0 + 1.45, height=bar_h * 0.8, color=colors)
        ax.plot([x0 + 1.45, x0 + 2.45], [y0, y0], color="#cccccc", linewidth=0.5)
        for j, name in enumerate(class_names):
            ax.text(x0 + 1.42, ys[j], str(name)[:14], ha="right", va="center", fontsize=5)
        caption = f"{titles[i] + ': ' if titles else ''}{class_names[predicted]} ({probs[i][predicted]:.0%})"
        if not ok:
            caption += f", true {class_names[label]}"
        ax.text(x0, y0 + 1.08, caption, fontsize=7, color="black" if ok else WRONG)
    ax.set_xlim(-0.1, columns * cell_w)
    ax.set_ylim(-0.1, rows * cell_h)
    return fig


def confusion_matrix_figure(matrix: torch.Tensor, class_names: Sequence[str]) -> Figure:
    """Counts of true (rows) against predicted (columns) classes, numbers written in: torchmetrics' plot of its
    confusion matrix, drawn on a figure of the app's own (torchmetrics would make one through pyplot)."""
    names = [str(name) for name in class_names]
    size = 2 + 0.6 * len(names)
    fig = Figure(figsize=(size + 1, size), layout="constrained")
    ax = fig.subplots()
    MulticlassConfusionMatrix(num_classes=len(names)).plot(val=matrix.detach().cpu(), ax=ax, labels=names, cmap="Blues")
    counts = matrix.detach().cpu()
    ax.set_title(f"Confusion matrix (accuracy {float(counts.trace()) / max(1, int(counts.sum())):.2%})")
    return fig


def save(fig: Figure, path) -> None:
    """Write ``fig`` as a PNG, whole or not at all (``runs.storage.replace_file``), and close it."""
    try:
        replace_file(path, lambda handle: fig.savefig(handle, format="png", dpi=100))
    finally:
        close(fig)


def close(fig: Figure) -> None:
    """Let go of ``fig``; one made by pyplot (Lightning's learning-rate plot) is closed there too."""
    if getattr(fig.canvas, "manager", None) is not None:
        import matplotlib.pyplot as plt

        plt.close(fig)
