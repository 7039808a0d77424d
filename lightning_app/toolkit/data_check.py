"""``check``: what a data set holds before a model trains on it (``python -m lightning_app check``).

Every item of every split, split as ``fit`` splits it (the datamodule's ``inventory``), is read once by the
datamodule's own reader. From that one pass:

- **duplicates**: the same pixels under two names (exact: a digest of the decoded pixels), or the same picture
  resized, recompressed or lightly cropped (near: the correlation of 32x32 grey thumbnails at least ``near``),
  in groups; a group whose members sit in different splits is a **leak**;
- **likely label errors**: cleanlab's ``find_label_issues`` on out-of-fold class probabilities from scikit-learn
  (a logistic regression on the frozen backbone's features where the model has one, the feature cache reused;
  otherwise nearest neighbours on the thumbnails' principal components);
- **unreadable** files (the reader's own reasons), class balance, sizes and aspect ratios.

It writes ``check.json``, ``duplicates.png`` and ``label_issues.png`` to the run folder and the pictures to
TensorBoard, and prints a summary; ``fail_on`` turns findings into an error for CI.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from lightning.pytorch import LightningModule, Trainer

from datamodules.base import Inventory
from lightning_app import figures
from lightning_app.callbacks.tensorboard_views import tensorboard
from lightning_app.contracts import Checkable
from lightning_app.errors import AppError, SettingError, printable
from lightning_app.notices import notice
from lightning_app.runs.run_folders import run_dir
from lightning_app.runs.storage import location, replace_file
from lightning_app.toolkit.duplicates import Scan, duplicate_groups, scan
from lightning_app.toolkit.label_issues import label_issues, probe_features

FINDINGS = ("duplicates", "leaks", "label_issues", "unreadable")


class CheckFailed(AppError):
    """``--fail_on`` named a finding that ``check`` found."""


@dataclass
class Report:
    """``check.json``'s content, and the positions the pictures show."""

    content: dict
    groups: list[dict]
    issues: list[tuple]


def report(
    inventory: Inventory,
    class_names: Sequence[str],
    scan_: Scan,
    groups: list[dict],
    issues: list[tuple],
    probe: str,
    seconds: float,
) -> Report:
    names, splits, labels = inventory.names, inventory.splits, inventory.labels.tolist()

    def item(i: int) -> dict:
        return {"file": names[i], "split": splits[i], "class": class_names[labels[i]]}

    duplicates = [{"kind": g["kind"], "files": [item(i) for i in g["members"]]} for g in groups]
    leaks = [d for d in duplicates if len({f["split"] for f in d["files"]}) > 1]
    present = sorted(set(splits), key=("train", "val", "test").index)
    per_split = Counter(zip(splits, labels, strict=True))  # one pass over the items
    counts = {split: {c: per_split[split, k] for k, c in enumerate(class_names)} for split in present}
    readable = scan_.sizes[:, 0] > 0
    heights, widths = scan_.sizes[readable, 0].float(), scan_.sizes[readable, 1].float()
    aspect = torch.maximum(heights, widths) / torch.minimum(heights, widths).clamp(min=1)
    odd_index = readable.nonzero().flatten()[(aspect > 3) | (torch.minimum(heights, widths) < 16)].tolist()

    def stats(values: torch.Tensor) -> dict:
        if not len(values):
            return {}
        return {"min": float(values.min()), "median": float(values.median()), "max": float(values.max())}

    content = {
        "items": len(names),
        "splits": {split: splits.count(split) for split in present},
        "class_counts": counts,
        "sizes": {"height": stats(heights), "width": stats(widths), "aspect": stats(aspect)},
        "odd": [{**item(i), "height": int(scan_.sizes[i, 0]), "width": int(scan_.sizes[i, 1])} for i in odd_index],
        "unreadable": [{**item(i), "reason": reason} for i, reason in sorted(scan_.unreadable.items())],
        "duplicates": duplicates,
        "leaks": leaks,
        "label_issues": [{**item(i), "suggested": class_names[s], "confidence": round(p, 4)} for i, s, p in issues],
        "label_probe": probe,
        "seconds": round(seconds, 1),
    }
    return Report(content, groups, issues)


def summary_lines(content: dict, folder: str, show: int) -> list[str]:
    """What the terminal shows: counts, then the worst few of each finding with their files."""
    splits = ", ".join(f"{n} {split}" for split, n in content["splits"].items())
    lines = [f"checked {content['items']} items ({splits}) in {content['seconds']} s"]
    for split, counts in content["class_counts"].items():
        lines.append(f"  {split}: " + ", ".join(f"{name} {n}" for name, n in counts.items()))
    exact = sum(1 for d in content["duplicates"] if d["kind"] == "exact")
    lines.append(
        f"duplicates: {len(content['duplicates'])} groups ({exact} exact, {len(content['duplicates']) - exact} near), "
        f"{len(content['leaks'])} across splits (leaks)"
    )
    for group in (content["leaks"] or content["duplicates"])[:show]:
        files = "  ".join(f"{printable(f['file'], 120)} [{f['split']}]" for f in group["files"][:4])
        more = f"  (+{len(group['files']) - 4})" if len(group["files"]) > 4 else ""
        lines.append(f"  {group['kind']}: {files}{more}")
    lines.append(f"label issues: {len(content['label_issues'])} ({content['label_probe']})")
    for issue in content["label_issues"][:show]:
        lines.append(
            f"  {printable(issue['file'], 120)} [{issue['split']}]: filed as {issue['class']}, looks like "
            f"{issue['suggested']} ({issue['confidence']:.2f})"
        )
    lines.append(f"unreadable: {len(content['unreadable'])}")
    for bad in content["unreadable"][:show]:
        lines.append(f"  {printable(bad['reason'], 200)}")
    if content["odd"]:
        lines.append(f"odd sizes (aspect over 3:1 or a side under 16 px): {len(content['odd'])}")
    lines.append(f"report: {folder}/check.json")
    return lines


def pictures(report_: Report, inventory: Inventory, class_names: Sequence[str], show: int):
    """The duplicate groups (leaks first) and the top label issues, as figures."""
    from matplotlib.figure import Figure

    def image(i: int) -> torch.Tensor:
        if isinstance(inventory.images, torch.Tensor):
            return inventory.images[i]
        return inventory.images[i][0]

    made = {}
    groups = sorted(report_.groups, key=lambda g: len({inventory.splits[i] for i in g["members"]}) == 1)[:show]
    if groups:
        columns = min(4, max(len(g["members"]) for g in groups))
        fig = Figure(figsize=(3 * columns, 3 * len(groups)))
        axes = fig.subplots(len(groups), columns, squeeze=False)
        for row, group in enumerate(groups):
            for col, ax in enumerate(axes[row]):
                ax.axis("off")
                if col < len(group["members"]):
                    i = group["members"][col]
                    ax.imshow(figures.displayable(image(i)), cmap="gray")
                    name = printable(inventory.names[i], 60).rsplit("/", 1)[-1]
                    ax.set_title(f"{group['kind']} [{inventory.splits[i]}]\n{name}", fontsize=8)
        fig.tight_layout()
        made["duplicates"] = fig
    issues = report_.issues[: 2 * show]
    if issues:
        columns = min(4, len(issues))
        rows = (len(issues) + columns - 1) // columns
        fig = Figure(figsize=(3 * columns, 3.2 * rows))
        axes = fig.subplots(rows, columns, squeeze=False).flatten()
        for ax in axes:
            ax.axis("off")
        for ax, (i, suggested, p) in zip(axes, issues, strict=False):
            ax.imshow(figures.displayable(image(i)), cmap="gray")
            name = printable(inventory.names[i], 60).rsplit("/", 1)[-1]
            given = class_names[int(inventory.labels[i])]
            ax.set_title(f"{name}\nfiled {given}, looks {class_names[suggested]} ({p:.2f})", fontsize=8)
        fig.tight_layout()
        made["label_issues"] = fig
    return made


def parse_fail_on(fail_on: str) -> list[str]:
    chosen = [name.strip() for name in fail_on.split(",") if name.strip()]
    unknown = [name for name in chosen if name not in FINDINGS]
    if unknown:
        raise SettingError(f"--fail_on {fail_on!r} names {', '.join(unknown)}: choose from {', '.join(FINDINGS)}")
    return chosen


def check_data(
    trainer: Trainer,
    model: LightningModule,
    datamodule: object,
    near: float = 0.995,
    near_features: float = 0.95,
    folds: int = 5,
    fail_on: str = "",
    show: int = 8,
) -> dict:
    """Run every check on ``datamodule`` and write the report; the report's content is returned."""
    chosen = parse_fail_on(fail_on)
    if not 0 < near <= 1:
        raise SettingError(f"--near must be in (0, 1], got {near}: pass e.g. --near 0.995")
    if not 0 < near_features <= 1:
        raise SettingError(f"--near_features must be in (0, 1], got {near_features}: pass e.g. --near_features 0.95")
    if folds < 2:
        raise SettingError(f"--folds must be at least 2, got {folds}")
    if not isinstance(datamodule, Checkable):
        raise SettingError(f"check cannot list the items of {type(datamodule).__name__}: it offers no inventory()")
    start = time.perf_counter()
    datamodule.prepare_data()  # what a Trainer's loop does first: fetch or unpack the data
    if hasattr(datamodule, "follow_model"):
        datamodule.follow_model(model)
    inventory: Inventory = datamodule.inventory()
    class_names = list(datamodule.class_names)
    notice(f"check: reading {len(inventory.names)} items")
    scanned = scan(inventory, getattr(datamodule, "num_workers", 0))
    x, probe = probe_features(trainer, model, datamodule, inventory, scanned)
    by_features = "features" in probe
    # a backbone without pretrained weights maps every picture close to every other: its features say no sameness
    pretrained = by_features and model.hparams.get("weights", "none") not in (None, "none")
    groups = duplicate_groups(scanned, near, x if pretrained else None, near_features)
    readable = np.array([d is not None for d in scanned.digests])
    x = x.numpy()
    labels = inventory.labels.numpy()
    positions = np.flatnonzero(readable)
    found = label_issues(
        x[positions] if len(x) == len(labels) else x,
        labels[positions],
        "features" in probe,
        folds,
        getattr(datamodule, "seed", 42),
    )
    issues = [(int(positions[i]), s, p) for i, s, p in found]
    made = report(inventory, class_names, scanned, groups, issues, probe, time.perf_counter() - start)
    if trainer.global_rank != 0:
        return made.content
    folder = run_dir(trainer) or location(trainer.default_root_dir)
    replace_file(folder / "check.json", lambda h: h.write(json.dumps(made.content, indent=1).encode()))
    logger = tensorboard(trainer)
    for name, fig in pictures(made, inventory, class_names, show).items():
        if logger is not None:
            logger.experiment.add_figure(f"check/{name}", fig, close=False)
        figures.save(fig, folder / f"{name}.png")
    print("\n".join(summary_lines(made.content, str(folder), show)), flush=True)
    failed = [f"{len(made.content[name])} {name.replace('_', ' ')}" for name in chosen if made.content[name]]
    if failed:
        raise CheckFailed(f"check found {', '.join(failed)} (--fail_on {fail_on}): see {folder}/check.json")
    return made.content
