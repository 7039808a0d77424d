"""The demo's server under load on 127.0.0.1: 200 drawings from 50 clients at once (latency percentiles, statuses),
then large photos at once (peak memory). Run from the repository root:

    python benchmarks/demo_load.py [--ckpt_path logs/.../best.ckpt]

Without ``--ckpt_path`` an untrained MLP answers (its cost per request is the trained one's). Prints JSON."""

from __future__ import annotations

import argparse
import io
import json
import resource
import sys
import threading
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from datamodules import MNISTDataModule  # noqa: E402
from lightning_app.predictor import Predictor  # noqa: E402
from lightning_app.toolkit.demo import make_server  # noqa: E402
from modules import MLP  # noqa: E402
from tests.helpers.http_load import load  # noqa: E402


def png(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ckpt_path")
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--big", type=int, default=6, help="10000x10000 PNGs sent at once")
    args = parser.parse_args()
    predictor = Predictor.load(args.ckpt_path) if args.ckpt_path else Predictor(MLP(), MNISTDataModule("absent"))
    server = make_server(predictor, "127.0.0.1", 0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]
    digit = np.zeros((280, 280), np.uint8)
    digit[40:240, 125:155] = 255
    before = peak_mb()
    result = {"drawings": load(port, png(digit), args.requests, args.clients), "peak_mb_after_drawings": peak_mb()}
    big = np.zeros((10000, 10000), np.uint8)
    big[::100] = 255
    body = png(big)
    result["big"] = load(port, body, args.big, args.big) | {"png_bytes": len(body)}
    result["peak_mb_before"], result["peak_mb_after_big"] = round(before), round(peak_mb())
    server.shutdown()
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
