"""``check`` finds what was planted: exact and near duplicates, copies across splits (leaks), misfiled items and
unreadable files, in small generated folders and idx files; a real-data test runs on the shared photos."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.helpers.data import transfer_fit_args, write_idx, write_idx_dataset

SHARED_PHOTOS = Path(__file__).resolve().parents[3] / "shared" / "datasets" / "cats_dogs"


def stripes(rng: np.random.Generator, vertical: bool, size: int = 48) -> np.ndarray:
    """A class that thumbnails tell apart: stripes of a random frequency and phase, across or down, with noise."""
    frequency, phase = rng.uniform(2, 6), rng.uniform(0, 2 * np.pi)
    wave = 127 + 100 * np.sin(2 * np.pi * frequency * np.arange(size) / size + phase)
    grid = np.tile(wave, (size, 1)) if vertical else np.tile(wave[:, None], (1, size))
    grid = grid + rng.normal(0, 25, (size, size))
    return np.clip(np.stack([grid] * 3, axis=-1), 0, 255).astype(np.uint8)


@pytest.fixture
def planted(tmp_path) -> tuple[Path, dict[str, str]]:
    """40 photos a class; planted: a PNG saved again with other bytes (exact), a resized JPEG copy (near), two
    misfiled photos, and a file that is not an image."""
    rng = np.random.default_rng(0)
    root = tmp_path / "photos"
    for name in ("across", "down"):
        (root / name).mkdir(parents=True)
        for i in range(40):
            Image.fromarray(stripes(rng, vertical=name == "down")).save(root / name / f"{name}{i}.png")
    original = Image.open(root / "across" / "across0.png")
    original.save(root / "across" / "exact_copy.png", compress_level=1)  # other bytes, the same pixels
    buffer = io.BytesIO()
    Image.open(root / "down" / "down0.png").resize((96, 96)).save(buffer, "JPEG", quality=90)
    (root / "down" / "near_copy.jpg").write_bytes(buffer.getvalue())
    for i in range(2):
        Image.fromarray(stripes(rng, vertical=True)).save(root / "across" / f"misfiled{i}.png")
    (root / "down" / "broken.png").write_bytes(b"not an image at all")
    return root, {"exact": "exact_copy.png", "near": "near_copy.jpg"}


def run_check(run_cli, *args: str) -> dict:
    run_cli("check", *args)
    (report,) = Path("logs").rglob("check.json")
    return json.loads(report.read_text())


def test_check_finds_planted_duplicates_misfiled_photos_and_unreadable_files(planted, run_cli, capsys):
    root, copies = planted
    args = ["--data", "CatDogDataModule", "--data.data_dir", str(root), "--data.num_workers", "0"]
    report = run_check(run_cli, *args)
    groups = {tuple(sorted(Path(f["file"]).name for f in g["files"])): g["kind"] for g in report["duplicates"]}
    assert groups == {("across0.png", "exact_copy.png"): "exact", ("down0.png", "near_copy.jpg"): "near"}
    flagged = {Path(issue["file"]).name: issue for issue in report["label_issues"]}
    assert {"misfiled0.png", "misfiled1.png"} <= set(flagged)
    assert flagged["misfiled0.png"]["class"] == "across" and flagged["misfiled0.png"]["suggested"] == "down"
    assert len(flagged) <= 4  # the planted two, and at most a couple of honest doubts
    assert [Path(bad["file"]).name for bad in report["unreadable"]] == ["broken.png"]
    assert report["items"] == 85 and sum(report["splits"].values()) == 85
    leaks = {tuple(sorted(f["split"] for f in g["files"])) for g in report["leaks"]}
    assert all(len(set(splits)) > 1 for splits in leaks)
    out = capsys.readouterr().out
    assert "checked 85 items" in out and "label issues:" in out and "unreadable: 1" in out
    folder = next(Path("logs").rglob("check.json")).parent
    assert (folder / "duplicates.png").is_file() and (folder / "label_issues.png").is_file()
    assert any(p.name.startswith("events.out.tfevents") for p in folder.iterdir())  # the pictures in TensorBoard


def test_a_copy_across_the_split_of_an_idx_file_is_a_leak_and_fail_on_makes_it_an_error(tmp_path, run_cli, capsys):
    data = write_idx_dataset(tmp_path / "data", "MNIST", n_train=300, n_test=100)
    raw = data / "MNIST" / "raw"
    train = np.frombuffer((raw / "train-images-idx3-ubyte").read_bytes()[16:], np.uint8).reshape(-1, 28, 28).copy()
    test = np.frombuffer((raw / "t10k-images-idx3-ubyte").read_bytes()[16:], np.uint8).reshape(-1, 28, 28).copy()
    test[7] = train[11]  # the same digit in the training file and the test file
    write_idx(raw / "t10k-images-idx3-ubyte", test)
    with pytest.raises(SystemExit) as stop:
        run_check(run_cli, "--data.data_dir", str(data), "--data.download", "false", "--fail_on", "leaks")
    assert stop.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: check found 1 leaks (--fail_on leaks)")
    report = json.loads(next(Path("logs").rglob("check.json")).read_text())  # written before the error
    leak = report["leaks"][0]
    assert leak["kind"] == "exact" and {f["file"] for f in leak["files"]} == {"train[11]", "test[7]"}


@pytest.mark.parametrize(
    ("flags", "says"),
    [
        (["--fail_on", "leaks,typos"], "--fail_on 'leaks,typos' names typos"),
        (["--near", "0"], "--near must be in (0, 1]"),
        (["--folds", "1"], "--folds must be at least 2"),
    ],
)
def test_bad_check_settings_are_one_line(tmp_path, run_cli, capsys, flags, says):
    data = write_idx_dataset(tmp_path / "data", "MNIST", n_train=60, n_test=20)
    with pytest.raises(SystemExit) as stop:
        run_cli("check", "--data.data_dir", str(data), *flags)
    assert stop.value.code == 2
    assert says in capsys.readouterr().err


@pytest.mark.long
def test_check_with_a_transfer_model_reads_backbone_features(planted, run_cli):
    """With a backbone, label issues come from a logistic regression on its features (the feature cache)."""
    root, _ = planted
    (root / "down" / "broken.png").unlink()  # an unreadable file sends the probe back to thumbnails
    args = transfer_fit_args(root)[1:]  # the shipped transfer config, a small random-init backbone
    report = run_check(run_cli, *args)
    assert "features, logistic regression" in report["label_probe"]
    assert any(g["kind"] == "exact" for g in report["duplicates"])


@pytest.mark.real_data
@pytest.mark.skipif(not SHARED_PHOTOS.is_dir(), reason="needs ../shared/datasets/cats_dogs")
def test_check_on_the_shared_photos_finds_the_known_near_duplicate(run_cli):
    report = run_check(run_cli, "-c", "catdog_transfer", "--data.data_dir", str(SHARED_PHOTOS))
    names = [sorted(Path(f["file"]).name for f in g["files"]) for g in report["duplicates"]]
    assert ["dog.180.jpg", "dog.74.jpg"] in names
    assert report["items"] == 2000 and not report["unreadable"]


def test_fit_keeps_checks_duplicate_groups_on_one_side_and_leaves_out_excluded_photos(planted, run_cli, tmp_path):
    """Issue 34: a duplicate group never straddles the split given the check.json (checkpoints without it keep
    the split they had), and ``--data.exclude`` leaves photos out."""
    from datamodules import CatDogDataModule

    root, _ = planted
    (root / "down" / "broken.png").unlink()
    run_check(run_cli, "--data", "CatDogDataModule", "--data.data_dir", str(root), "--data.num_workers", "0")
    report_path = next(Path("logs").rglob("check.json"))
    report = json.loads(report_path.read_text())
    assert report["leaks"], "the planted exact copy lands across the split with seed 42"

    def sides(module: CatDogDataModule) -> dict[str, str]:
        return {Path(f).name: split for split, (files, _) in module.split_files().items() for f in files}

    before = sides(CatDogDataModule(data_dir=str(root)))
    after = sides(CatDogDataModule(data_dir=str(root), groups=str(report_path)))
    for group in report["duplicates"]:
        names = [Path(f["file"]).name for f in group["files"]]
        assert len({after[n] for n in names}) == 1
    assert len({before["across0.png"], before["exact_copy.png"]}) == 2  # the leak, without the groups
    moved = [n for n in before if before[n] != after[n]]
    assert 1 <= len(moved) <= 2  # only the copies moved: the rest of the split is as it was
    exclude = tmp_path / "exclude.txt"
    exclude.write_text("\n".join(issue["file"] for issue in report["label_issues"]) + "\n# done\n")
    left = sides(CatDogDataModule(data_dir=str(root), exclude=str(exclude)))
    assert not {"misfiled0.png", "misfiled1.png"} & set(left) and len(left) == len(before) - len(report["label_issues"])


@pytest.mark.parametrize(
    ("content", "says"),
    [("{}", "is not a check.json"), ('{"duplicates": [{"files": 3}]}', "is not a check.json")],
)
def test_a_groups_file_that_is_not_a_check_json_is_one_line(planted, content, says, tmp_path):
    from datamodules import CatDogDataModule, DataError

    root, _ = planted
    bad = tmp_path / "bad.json"
    bad.write_text(content)
    with pytest.raises(DataError, match=says):
        CatDogDataModule(data_dir=str(root), groups=str(bad)).split_files()


@pytest.mark.long  # the session's stream is written by optimize first
def test_check_reads_a_stream_as_its_photo_folder(photo_stream, run_cli):
    """A stream's photos, split as the stream holds them, checked like the folder it was written from."""
    photos, stream = photo_stream
    args = ["--data", "StreamingImageDataModule", "--data.data_dir", str(stream), "--data.num_workers", "0"]
    report = run_check(run_cli, *args)
    assert report["items"] == 24 and not report["unreadable"]
    assert set(report["splits"]) <= {"train", "val", "test"}
    assert all(f["file"].split("/")[0] in ("train", "val", "test") for g in report["duplicates"] for f in g["files"])
