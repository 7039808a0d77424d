"""``python -m lightning_app demo --ckpt_path best``: a page where you draw a digit or drop a photo and watch the
trained model answer.

The page (``demo_page.html``) sends the drawing or the file to ``POST /predict``; the server runs it through
:class:`~lightning_app.predictor.Predictor`, the same reader, transform, normalisation and model as ``predict``,
and answers with the class probabilities and the input as the model sees it.

Served by the standard library's ``ThreadingHTTPServer``, not Gradio: importing Gradio alone took longer than the
start-up goal (docs/guide.md, "See it work"), and the page needs two routes and one JSON answer. The server binds
127.0.0.1 unless ``--public true``, reads the checkpoint with ``weights_only=True`` and fetches nothing: the page
has no external scripts or fonts. Its flags come from ``serve``'s signature."""

from __future__ import annotations

import base64
import io
import json
import sys
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib.resources import files
from pathlib import Path

import torch
from PIL import Image

from datamodules import DataError
from lightning_app.errors import DemoError, first_line
from lightning_app.predictor import Predictor

LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")
MAX_UPLOAD = 20_000_000  # bytes; the datamodule's max_pixels then limits the decoded size
DRAIN_LIMIT = 200_000_000  # bytes of a refused upload read and dropped before answering; past this, just close


def answer(predictor: Predictor, data: bytes) -> dict:
    """The page's answer for one image file's bytes: probabilities in class order, the predicted class, the input
    as the model sees it (a PNG data URL) and the milliseconds the prediction took. Bad input raises DataError."""
    if not data:
        raise DataError("no image received: draw a digit or choose a file")
    start = time.perf_counter()
    pixels = predictor.inputs([Upload(data)])
    if int(pixels.max()) == int(pixels.min()):
        raise DataError("the image is one flat colour: draw a digit or choose another picture")
    probs = predictor.probabilities(pixels)[0]
    elapsed = (time.perf_counter() - start) * 1000
    return {
        "classes": predictor.class_names,
        "probabilities": probs.tolist(),
        "predicted": predictor.class_names[int(probs.argmax())],
        "input": data_url(pixels[0]),
        "ms": round(elapsed, 2),
    }


class Upload(io.BytesIO):
    """The bytes the page sent, named so in the reader's messages."""

    def __str__(self) -> str:
        return "the uploaded image"

    __repr__ = __str__


def data_url(image: torch.Tensor) -> str:
    """A uint8 (C, H, W) image as a PNG data URL."""
    array = image.permute(1, 2, 0).squeeze(-1).numpy() if image.shape[0] == 1 else image.permute(1, 2, 0).numpy()
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def page_info(predictor: Predictor) -> dict:
    return {
        "model": type(predictor.model).__name__,
        "checkpoint": Path(predictor.checkpoint).name,
        "classes": predictor.class_names,
        "kind": "digit" if predictor.channels == 1 else "photo",
        "size": list(predictor.input_size),
    }


def handler_for(predictor: Predictor, info: dict) -> type[BaseHTTPRequestHandler]:
    """Each request in its own thread (ThreadingHTTPServer): a model in eval mode under inference_mode holds no
    state between calls, so predictions may overlap."""
    page = files("lightning_app.toolkit").joinpath("demo_page.html").read_bytes()

    class Handler(BaseHTTPRequestHandler):
        server_version = "dlwp-demo"

        def log_message(self, format: str, *args) -> None:  # noqa: A002 - BaseHTTPRequestHandler's signature
            pass  # quiet terminal: one line per request would bury the start-up message

        def send(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        def send_json(self, status: int, value: dict) -> None:
            self.send(status, json.dumps(value).encode(), "application/json")

        def do_GET(self) -> None:  # noqa: N802 - BaseHTTPRequestHandler's name
            if self.path in ("/", "/index.html"):
                self.send(HTTPStatus.OK, page, "text/html; charset=utf-8")
            elif self.path == "/info":
                self.send_json(HTTPStatus.OK, info)
            else:
                self.send_json(HTTPStatus.NOT_FOUND, {"error": f"no page {self.path[:100]}"})

        def do_POST(self) -> None:  # noqa: N802
            if self.path != "/predict":
                self.send_json(HTTPStatus.NOT_FOUND, {"error": f"no page {self.path[:100]}"})
                return
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_UPLOAD:
                drain(self.rfile, min(length, DRAIN_LIMIT))  # a client still sending would miss the answer
                self.send_json(
                    HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                    {"error": f"the file has {length:,} bytes, over the limit of {MAX_UPLOAD:,}: choose a smaller one"},
                )
                self.close_connection = True
                return
            try:
                self.send_json(HTTPStatus.OK, answer(predictor, self.rfile.read(length)))
            except DataError as err:
                self.send_json(HTTPStatus.BAD_REQUEST, {"error": first_line(err, 300)})
            except Exception as err:  # noqa: BLE001 - the page shows it and the server keeps serving
                self.send_json(
                    HTTPStatus.INTERNAL_SERVER_ERROR, {"error": f"could not predict: {first_line(err, 300)}"}
                )

    return Handler


def drain(stream, length: int, chunk: int = 1 << 20) -> None:
    """Read and drop ``length`` bytes of a request body."""
    while length > 0:
        data = stream.read(min(chunk, length))
        if not data:
            return
        length -= len(data)


def serve(
    ckpt_path: str = "best",
    port: int = 7860,
    host: str = "127.0.0.1",
    public: bool = False,
    save_dir: str = "logs",
) -> None:
    """Serve a page where you draw a digit or drop a photo and watch the trained model answer.

    Args:
        ckpt_path: a .ckpt file, or ``best``/``last`` of the newest run under ``save_dir``.
        port: the port (0: any free one).
        host: the address to bind; anything but 127.0.0.1/localhost needs ``--public true``.
        public: serve on a non-local address on purpose (anyone who can reach it can use the model).
        save_dir: where ``best``/``last`` are looked for.
    """
    if host not in LOCAL_HOSTS and not public:
        raise DemoError(f"--host {host} would serve the model to the network: pass --public true to do that on purpose")
    predictor = Predictor.load(ckpt_path, save_dir)
    start = time.perf_counter()
    info = page_info(predictor)
    server = ThreadingHTTPServer((host, port), handler_for(predictor, info))
    server.daemon_threads = True
    bound_host, bound_port = server.server_address[:2]
    url = f"http://{'127.0.0.1' if bound_host in ('127.0.0.1', '0.0.0.0') else bound_host}:{bound_port}/"
    if public:
        print(f"warning: serving on {host}: anyone who can reach this machine can use the model", file=sys.stderr)
    print(
        f"demo: {info['model']} from {predictor.checkpoint}\nserving {url} "
        f"(ready {time.perf_counter() - start:.2f} s after the model loaded; Ctrl-C stops)",
        flush=True,
    )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
