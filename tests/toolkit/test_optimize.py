"""``optimize``: an image folder written as a LitData stream, and trained from with the CLI."""

import json
import sys

import pytest

from datamodules.stream_format import INDEX
from tests.helpers.data import CATS_DOGS, write_photo_folder


def test_optimize_writes_each_split_and_the_index(photo_stream):
    photos, stream = photo_stream
    index = json.loads((stream / INDEX).read_text())
    assert index["class_names"] == ["cat", "dog"] and sum(index["counts"].values()) == 24
    for split, count in index["counts"].items():
        assert len(index["labels"][split]) == count and len(index["digests"][split]) == 64
        assert (stream / split / "index.json").is_file()


def test_optimize_into_a_folder_with_files_is_one_line(photo_stream, run_cli, capsys):
    photos, stream = photo_stream
    with pytest.raises(SystemExit) as stop:
        run_cli("optimize", "--data_dir", str(photos), "--output", str(stream))
    assert stop.value.code == 2
    assert "already holds files: name a new folder" in capsys.readouterr().err


def test_optimize_without_litdata_says_what_to_install(photo_root, run_cli, capsys, monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "litdata", None)
    with pytest.raises(SystemExit) as stop:
        run_cli("optimize", "--data_dir", str(photo_root), "--output", str(tmp_path / "out"))
    assert stop.value.code == 2
    assert "pip install -e '.[stream]'" in capsys.readouterr().err


@pytest.mark.long
@pytest.mark.parametrize("config", ["catdog_transfer", "catdog_finetune"])
def test_fit_test_and_predict_from_a_stream(config, tmp_path, run_cli, capsys):
    photos = write_photo_folder(tmp_path / "photos", CATS_DOGS)
    run_cli("optimize", "--data_dir", str(photos), "--output", "stream")
    small = ["--model.backbone", "resnet18", "--model.weights", "none", "--data.image_size", "32"]
    stream = ["--data", "StreamingImageDataModule", "--data.data_dir", "stream", "--data.num_workers", "0"]
    run_cli("fit", "-c", config, *small, *stream, "--trainer.max_epochs", "2")
    assert "test/acc:" in capsys.readouterr().out
    run_cli("test", "--ckpt_path", "best", "--data.data_dir", "stream")
    assert "test/acc:" in capsys.readouterr().out
    run_cli("predict", "--ckpt_path", "best", "--data.data_dir", "stream", "--data.predict_path", str(photos / "cat"))
    assert "predictions: " in capsys.readouterr().out


def test_a_broken_photo_is_one_line_before_anything_is_written(tmp_path, run_cli, capsys):
    photos = write_photo_folder(tmp_path / "photos", CATS_DOGS)
    (photos / "cat" / "zz_broken.jpg").write_bytes(b"not an image")
    with pytest.raises(SystemExit) as stop:
        run_cli("optimize", "--data_dir", str(photos), "--output", "stream")
    assert stop.value.code == 2
    assert "zz_broken.jpg is not a readable image" in capsys.readouterr().err
    assert not (tmp_path / "stream").exists()
    run_cli("optimize", "--data_dir", str(photos), "--output", "stream", "--skip_bad_files", "true")
    index = json.loads((tmp_path / "stream" / INDEX).read_text())
    assert sum(index["counts"].values()) == 24  # the broken one left out


def test_optimize_to_a_file_url_or_a_store_litdata_cannot_write(photo_root, tmp_path, run_cli, capsys):
    run_cli("optimize", "--data_dir", str(photo_root), "--output", f"file://{tmp_path}/stream")
    assert (tmp_path / "stream" / INDEX).is_file()
    with pytest.raises(SystemExit) as stop:
        run_cli("optimize", "--data_dir", str(photo_root), "--output", "memory://photos/stream")
    assert stop.value.code == 2
    assert "LitData writes streams to a local folder or to s3://, gs://, r2://" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("flags", "says"),
    [
        (["--chunk_bytes", "abc"], "--chunk_bytes abc: pass a size such as 64MB"),
        (["--chunk_bytes", "0"], "--chunk_bytes 0: pass a size"),
        (["--chunk_bytes=-5MB"], "--chunk_bytes -5MB: pass a size"),  # with a space argparse reads a flag
        (["--num_workers", "-1"], "--num_workers -1: pass 1 or more processes"),
    ],
)
def test_optimizes_flags_are_one_line_before_any_photo_is_read(flags, says, photo_root, tmp_path, run_cli, capsys):
    with pytest.raises(SystemExit) as stop:
        run_cli("optimize", "--data_dir", str(photo_root), "--output", str(tmp_path / "stream"), *flags)
    err = capsys.readouterr().err
    assert stop.value.code == 2 and says in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "stream").exists()


def test_an_output_inside_the_photos_or_held_by_another_run_is_one_line(photo_root, tmp_path, run_cli, capsys):
    """Inside the photo folder it would be read as photos; a second writer would remove the first one's chunks."""
    with pytest.raises(SystemExit):
        run_cli("optimize", "--data_dir", str(photo_root), "--output", str(photo_root / "stream"))
    assert "is inside the photo folder" in capsys.readouterr().err and not (photo_root / "stream").exists()
    from lightning_app.toolkit.optimize import claimed

    busy = tmp_path / "busy"
    with claimed(busy, str(busy)):  # another optimize holds the folder while it writes
        with pytest.raises(SystemExit):
            run_cli("optimize", "--data_dir", str(photo_root), "--output", str(busy))
        assert (busy / ".optimize.lock").exists()  # its claim, untouched
    assert "already holds files" in capsys.readouterr().err
    assert not busy.exists()  # the claim's own folder, empty, is gone with it
