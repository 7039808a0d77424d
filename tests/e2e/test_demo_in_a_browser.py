"""``demo``: the page served on 127.0.0.1, driven in a real browser (headless Chromium through Playwright)."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.helpers.processes import prediction_rows

CHROMIUM = os.environ.get("DLWP_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")


def digit_file(path: Path, kind: str = "one") -> Path:
    digit = np.zeros((56, 56), dtype=np.uint8)
    if kind == "one":
        digit[8:48, 25:31] = 255
    else:
        digit[10:46, 12:18] = digit[10:46, 38:44] = digit[10:16, 12:44] = digit[40:46, 12:44] = 255
    Image.fromarray(digit).save(path)
    return path


@pytest.fixture
def served(mnist_run, tmp_path):
    """``python -m lightning_app demo --ckpt_path best --port 0`` as a user starts it; yields its address."""
    process = subprocess.Popen(
        [sys.executable, "-m", "lightning_app", "demo", "--ckpt_path", "best", "--port", "0"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines = []
    for line in process.stdout:
        lines.append(line)
        if line.startswith("serving "):
            break
    else:
        raise AssertionError("".join(lines))
    try:
        yield line.split()[1]
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.fixture
def page(served):
    playwright = pytest.importorskip("playwright.sync_api")
    if CHROMIUM is None:
        pytest.skip("no Chromium installed (Debian: apt-get install chromium)")
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        tab = browser.new_page()
        tab.goto(served)
        tab.wait_for_selector("body[data-ready=true]")
        yield tab
        browser.close()


def page_probabilities(tab) -> dict[str, float]:
    tab.wait_for_selector("#bars .bar")
    rows = tab.locator("#bars .bar")
    return {
        rows.nth(i).get_attribute("data-cls"): float(rows.nth(i).get_attribute("data-p")) for i in range(rows.count())
    }


@pytest.mark.long  # a served demo and a browser: about 15 s
def test_drawing_a_digit_shows_what_the_model_sees_and_its_answer(page):
    assert page.title() == "What did the network learn?" and "MLP: draw a digit" in page.locator("#title").inner_text()
    box = page.locator("#pad").bounding_box()
    page.mouse.move(box["x"] + 140, box["y"] + 40)
    page.mouse.down()
    for y in range(40, 250, 10):  # a vertical stroke
        page.mouse.move(box["x"] + 140, box["y"] + y)
    page.mouse.up()
    page.wait_for_function("document.querySelector('#predicted').textContent.length > 0")
    probabilities = page_probabilities(page)
    assert sorted(probabilities) == [str(d) for d in range(10)] and sum(probabilities.values()) == pytest.approx(1)
    assert page.locator("#predicted").inner_text() == max(probabilities, key=probabilities.get)
    assert page.locator("#seen").get_attribute("src").startswith("data:image/png;base64,")
    assert "ms on the server" in page.locator("#timing").inner_text()


@pytest.mark.long
def test_an_uploaded_file_gets_predicts_numbers_and_bad_input_a_message(page, idx_root, run_cli, tmp_path, capsys):
    photo = digit_file(tmp_path / "zero.png", "zero")
    run_cli("predict", "--ckpt_path", "best", "--data.data_dir", str(idx_root), "--data.predict_path", str(photo))
    (row,) = prediction_rows(capsys.readouterr().out)
    page.set_input_files("#file", str(photo))
    page.wait_for_function("document.querySelector('#predicted').textContent.length > 0")
    assert page_probabilities(page) == pytest.approx({d: float(row[f"p_{d}"]) for d in map(str, range(10))}, abs=1e-6)
    assert page.locator("#predicted").inner_text() == row["predicted"]
    # not an image, then an empty picture: a message on the page, and the server goes on serving
    (tmp_path / "notes.png").write_text("not an image")
    page.set_input_files("#file", str(tmp_path / "notes.png"))
    page.wait_for_function("document.querySelector('#message').textContent.includes('not a readable image')")
    Image.new("L", (30, 30)).save(tmp_path / "empty.png")
    page.set_input_files("#file", str(tmp_path / "empty.png"))
    page.wait_for_function("document.querySelector('#message').textContent.includes('one flat colour')")
    page.set_input_files("#file", str(digit_file(tmp_path / "one.png")))
    page.wait_for_function("document.querySelector('#message').textContent === ''")
    assert page.locator("#bars .bar").count() == 10


def test_a_public_address_needs_public_true(run_cli, mnist_run, capsys):
    with pytest.raises(SystemExit) as exit_info:
        run_cli("demo", "--ckpt_path", "best", "--host", "0.0.0.0")
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err == "error: --host 0.0.0.0 would serve the model to the network: pass --public true to do that on purpose"


@pytest.mark.long
def test_an_empty_or_huge_upload_is_refused_with_a_message_and_the_server_goes_on(served):
    import json
    import urllib.error
    import urllib.request

    def post(body: bytes) -> tuple[int, dict]:
        request = urllib.request.Request(served + "predict", data=body, method="POST")
        try:
            with urllib.request.urlopen(request) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as err:
            return err.code, json.loads(err.read())

    assert post(b"") == (400, {"error": "no image received: draw a digit or choose a file"})
    status, answer = post(b"\0" * 20_000_001)
    assert status == 413 and answer["error"].startswith("the file has 20,000,001 bytes, over the limit")
    status, answer = post(digit_file(Path("one.png")).read_bytes())
    assert status == 200 and len(answer["probabilities"]) == 10 and answer["ms"] < 1000
