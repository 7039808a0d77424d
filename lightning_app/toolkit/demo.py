"""``python -m lightning_app demo --ckpt_path best``: a page where you draw a digit or drop a photo and watch the
trained model answer.

The page (``demo_page.html``) sends the drawing or the file to ``POST /predict``; the server runs it through
:class:`~lightning_app.predictor.Predictor`, the same reader, transform, normalisation and model as ``predict``,
and answers with the class probabilities and the input as the model sees it.

Served by the standard library's ``ThreadingHTTPServer`` with the limits of a server a browser reaches
(``demo_server.py``), not Gradio: importing Gradio alone took longer than the start-up goal (docs/guide.md, "See it
work"), and the page needs two routes and one JSON answer. The server binds 127.0.0.1 unless ``--public true``,
answers only requests addressed to it and POSTs from its own page, reads the checkpoint with ``weights_only=True``
and fetches nothing: the page has no external scripts or fonts. Its flags come from ``serve``'s signature."""

from __future__ import annotations

import base64
import errno
import io
import json
import socket
import sys
import time
from http import HTTPStatus
from importlib.resources import files
from pathlib import Path

import torch
from PIL import Image

from datamodules import DataError
from lightning_app.errors import DemoError, first_line
from lightning_app.predictor import Predictor
from lightning_app.step_progress import status
from lightning_app.toolkit.demo_server import LOCAL_HOSTS, Gate, GuardedHandler, GuardedServer, Refused

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
        "checkpoint": Path(predictor.checkpoint).name if predictor.checkpoint else "(in memory)",
        "classes": predictor.class_names,
        "kind": "digit" if predictor.channels == 1 else "photo",
        "size": list(predictor.input_size),
    }


def handler_for(predictor: Predictor, info: dict, gate: Gate) -> type[GuardedHandler]:
    """Each request in its own thread: a model in eval mode under inference_mode holds no state between calls,
    so predictions may overlap, as many at once as ``gate`` lets run."""
    page = files("lightning_app.toolkit").joinpath("demo_page.html").read_bytes()

    class Handler(GuardedHandler):
        def send_json(self, status: int, value: dict) -> None:
            self.send(status, json.dumps(value, allow_nan=False).encode(), "application/json")

        def do_GET(self) -> None:  # noqa: N802 - BaseHTTPRequestHandler's name
            try:
                self.check_host()
            except Refused as refused:
                self.send_json(refused.status, {"error": str(refused)})
                return
            if self.path in ("/", "/index.html"):
                self.send(HTTPStatus.OK, page, "text/html; charset=utf-8")
            elif self.path == "/info":
                self.send_json(HTTPStatus.OK, info)
            else:
                self.send_json(HTTPStatus.NOT_FOUND, {"error": f"no page {self.path[:100]}"})

        def do_POST(self) -> None:  # noqa: N802
            try:
                length = self.body_length()
                self.check_host()
                self.check_origin()
                if self.path != "/predict":
                    raise Refused(HTTPStatus.NOT_FOUND, f"no page {self.path[:100]}")
                with gate.admit(length):
                    data = self.read_body(length)
                    with gate.run():
                        self.send_json(HTTPStatus.OK, answer(predictor, data))
            except Refused as refused:
                if self.unread:
                    self.connection.settimeout(2)  # a client that declared a body and sends none is not waited for
                    drain(self.rfile, self.unread)
                self.send_json(refused.status, {"error": str(refused)})
            except DataError as err:
                self.send_json(HTTPStatus.BAD_REQUEST, {"error": first_line(err, 300)})
            except OSError:
                raise  # the client went away: the server drops the connection
            except Exception as err:  # noqa: BLE001 - the page shows it and the server keeps serving
                self.send_json(
                    HTTPStatus.INTERNAL_SERVER_ERROR, {"error": f"could not predict: {first_line(err, 300)}"}
                )

    return Handler


def drain(stream, length: int, chunk: int = 1 << 20) -> None:
    """Read and drop up to ``DRAIN_LIMIT`` bytes of a refused request's body."""
    length = min(length, DRAIN_LIMIT)
    while length > 0:
        try:
            data = stream.read(min(chunk, length))
        except OSError:
            return
        if not data:
            return
        length -= len(data)


def check_address(host: str, port: int, public: bool) -> None:
    """A ``DemoError`` for an address the demo must not or cannot serve, before the model loads."""
    if host not in LOCAL_HOSTS and not public:
        raise DemoError(f"--host {host} would serve the model to the network: pass --public true to do that on purpose")
    if not 0 <= port <= 65535:
        raise DemoError(f"--port {port} is not a port: pass one from 1 to 65535, or 0 for any free one")


def make_server(predictor: Predictor, host: str = "127.0.0.1", port: int = 0, public: bool = False) -> GuardedServer:
    """The demo's server for ``predictor``, bound and not yet serving; a bad address is a ``DemoError``."""
    check_address(host, port, public)
    handler = handler_for(predictor, page_info(predictor), Gate())
    try:
        return GuardedServer(host, port, handler, public)
    except socket.gaierror as err:
        raise DemoError(f"--host {host} is not an address here ({err.strerror}): pass e.g. 127.0.0.1") from None
    except OSError as err:
        hint = "pass another --port, or 0 for any free one" if err.errno == errno.EADDRINUSE else "pass another --host"
        raise DemoError(f"cannot serve on {host} port {port} ({err.strerror}): {hint}") from None


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
    check_address(host, port, public)
    with status("demo: loading the model"):
        predictor = Predictor.load(ckpt_path, save_dir)
    start = time.perf_counter()
    server = make_server(predictor, host, port, public)
    url = server.url
    if public:
        print(f"warning: serving on {host}: anyone who can reach this machine can use the model", file=sys.stderr)
    print(
        f"demo: {type(predictor.model).__name__} from {predictor.checkpoint}\nserving {url} "
        f"(ready {time.perf_counter() - start:.2f} s after the model loaded; Ctrl-C stops)",
        flush=True,
    )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
