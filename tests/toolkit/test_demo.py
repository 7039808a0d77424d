"""``demo``'s server as a hostile page or client meets it: every request gets a status and a JSON line, the server
goes on serving, and its work and memory stay bounded."""

from __future__ import annotations

import http.client
import io
import json
import socket
import threading
import time

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from datamodules import MNISTDataModule
from lightning_app.errors import DemoError
from lightning_app.predictor import Predictor
from lightning_app.toolkit.demo import make_server
from lightning_app.toolkit.demo_server import Gate, Refused
from modules import MLP
from tests.helpers.http_load import load


def png(size: int = 56, seed: int = 0) -> bytes:
    rng = np.random.default_rng(seed)
    buffer = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (size, size), dtype=np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def server():
    """The demo's server on 127.0.0.1 with an untrained MLP (no checkpoint needed), serving in a thread."""
    server = make_server(Predictor(MLP(), MNISTDataModule(data_dir="absent")), "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def request(server, method: str, path: str, body: bytes = b"", headers: dict | None = None) -> tuple[int, dict]:
    """One request with exactly the headers given (plus Host, unless given), as a raw client sends them."""
    port = server.server_address[1]
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    connection.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
    headers = {"Host": f"127.0.0.1:{port}", **(headers or {})}
    for name, value in headers.items():
        if value is not None:
            connection.putheader(name, value)
    connection.endheaders(body or None)
    response = connection.getresponse()
    status, payload = response.status, response.read()
    connection.close()
    return status, json.loads(payload) if response.getheader("Content-Type") == "application/json" else {}


def post(server, body: bytes, **headers) -> tuple[int, dict]:
    return request(server, "POST", "/predict", body, {"Content-Length": str(len(body)), **headers})


def test_a_drawing_is_answered_and_the_page_is_served(server):
    status, answer = post(server, png(), Origin=f"http://127.0.0.1:{server.server_address[1]}")
    assert status == 200 and len(answer["probabilities"]) == 10 and answer["predicted"] in answer["classes"]
    assert request(server, "GET", "/")[0] == 200
    assert request(server, "GET", "/info")[1]["kind"] == "digit"
    assert request(server, "GET", "/info", headers={"Host": f"localhost:{server.server_address[1]}"})[0] == 200


@pytest.mark.parametrize(
    ("length", "status", "message"),
    [
        ("-1", 400, "Content-Length '-1' is not a number of bytes"),
        ("abc", 400, "Content-Length 'abc' is not a number of bytes"),
        ("9" * 5000, 400, "is not a number of bytes"),
        (None, 411, "send the file with a Content-Length"),
        ("400000000", 413, "the file has 400,000,000 bytes, over the limit of 20,000,000"),
    ],
)
def test_a_content_length_that_is_not_a_size_is_refused(server, length, status, message):
    got, answer = request(server, "POST", "/predict", b"", {"Content-Length": length})
    assert got == status and message in answer["error"]


def test_a_body_shorter_than_its_length_is_refused(server):
    port = server.server_address[1]
    with socket.create_connection(("127.0.0.1", port), timeout=30) as client:
        client.sendall(f"POST /predict HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 10\r\n\r\nabc".encode())
        client.shutdown(socket.SHUT_WR)
        reply = b"".join(iter(lambda: client.recv(65536), b""))
    assert reply.startswith(b"HTTP/1.0 400") and b"the file ended after 3 of 10 bytes" in reply


def test_another_host_or_a_cross_site_post_is_refused(server):
    port = server.server_address[1]
    status, answer = request(server, "GET", "/info", headers={"Host": f"evil.example:{port}"})  # DNS rebinding
    assert status == 421 and answer["error"] == f"this demo serves http://127.0.0.1:{port}/, not 'evil.example:{port}'"
    for headers in ({"Origin": "http://evil.example"}, {"Origin": "null"}, {"Sec-Fetch-Site": "cross-site"}):
        status, answer = post(server, png(), **{"Content-Type": "text/plain", **headers})
        assert status == 403 and "refused" in answer["error"]
    assert post(server, png(), Origin=f"http://localhost:{port}", Host=f"localhost:{port}")[0] == 200


def test_an_image_that_would_grow_huge_is_one_line_and_the_server_goes_on(server):
    buffer = io.BytesIO()
    Image.new("L", (100_000, 1), 255).save(buffer, format="PNG")  # a few hundred bytes
    status, answer = post(server, buffer.getvalue())
    assert status == 400 and "longer than 20 times its width or height" in answer["error"]
    assert post(server, png())[0] == 200


def test_the_gate_bounds_work_waiting_and_bytes():
    gate = Gate(running=1, waiting=1, wait_s=0.05, max_bytes=100)
    with gate.admit(10), gate.admit(10), pytest.raises(Refused, match="busy"), gate.admit(10):
        pass
    with pytest.raises(Refused, match="busy"), gate.admit(101):
        pass
    with gate.run(), pytest.raises(Refused, match="busy"), gate.run():
        pass
    with gate.admit(100), gate.run():  # all places are free again
        pass


def test_a_bad_address_is_one_line(server):
    predictor = Predictor(MLP(), MNISTDataModule(data_dir="absent"))
    with pytest.raises(DemoError, match=r"--port 70000 is not a port: pass one from 1 to 65535"):
        make_server(predictor, "127.0.0.1", 70000)
    with pytest.raises(DemoError, match=r"cannot serve on 127.0.0.1 port \d+ \(.*\): pass another --port, or 0"):
        make_server(predictor, "127.0.0.1", server.server_address[1])
    if socket.has_ipv6:
        try:
            ipv6 = make_server(predictor, "::1", 0)
        except DemoError as err:  # a machine without IPv6 on its loopback
            assert "cannot serve on ::1" in str(err)
        else:
            assert ipv6.url.startswith("http://[::1]:")
            ipv6.server_close()


headers_strategy = st.fixed_dictionaries(
    {},
    optional={
        "Content-Length": st.one_of(st.integers(-5, 30_000_000).map(str), st.text("0123456789-+ x", max_size=8)),
        "Origin": st.sampled_from(["http://evil.example", "null", "http://127.0.0.1:1"]),
        "Content-Type": st.sampled_from(["text/plain", "multipart/form-data; boundary=x", "image/png"]),
        "Transfer-Encoding": st.just("chunked"),
    },
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    method=st.sampled_from(["GET", "POST"]),
    path=st.sampled_from(["/", "/info", "/predict", "/predict?x=1", "/../etc/passwd", "/%00"]),
    body=st.one_of(st.binary(max_size=300), st.just(png(28))),
    headers=headers_strategy,
)
def test_any_request_gets_a_status_and_a_json_line_and_the_server_goes_on(server, method, path, body, headers):
    """Property: whatever the method, path, headers and body, the answer is a known status with a one-line error
    (or the answer itself), never a dropped connection; the server then answers a good request."""
    if "Content-Length" in headers and headers["Content-Length"].strip().isdigit():
        declared = int(headers["Content-Length"])
        body = body[:declared] + b"\0" * max(0, min(declared, 21_000_000) - len(body))
    try:
        status, answer = request(server, method, path, body if method == "POST" else b"", headers)
    except (ConnectionResetError, BrokenPipeError):  # refused past the limit while a huge body was still sent
        assert int(headers.get("Content-Length", "0").strip() or 0) > 20_000_000
    else:
        assert status in (200, 400, 403, 404, 411, 413, 421)
        if status != 200:
            assert answer["error"] and "\n" not in answer["error"]
    assert post(server, png())[0] == 200


def test_fifty_clients_at_once_are_all_served(server):
    """The load test of docs/trust.md (benchmarks/demo_load.py measures it): 200 drawings from 50 clients that
    start together, on the standard library's backlog of 5 most of them were reset."""
    result = load(server.server_address[1], png(), requests=200, clients=50)
    assert result["statuses"] == {200: 200}, result


def test_slow_clients_holding_every_connection_do_not_starve_a_well_behaved_one(server):
    """Issue 32: 256 connections that send a byte now and then held every place and a good client got nothing for
    40 s. Now a new connection takes the place of the one waiting longest for its headers, and a connection past
    its header deadline is closed."""
    old_limit, old_deadline = server.max_connections, server.header_deadline_s
    port = server.server_address[1]
    slow = []
    try:
        server.header_deadline_s = 60.0  # the eviction alone, not the deadline, must make room
        for _ in range(server.max_connections):
            connection = socket.create_connection(("127.0.0.1", port), timeout=5)
            connection.sendall(b"G")  # a request line that never ends
            slow.append(connection)
        for _ in range(3):
            status, answer = post(server, png())
            assert status == 200, answer
    finally:
        server.header_deadline_s = old_deadline
        for connection in slow:
            connection.close()
    assert server.max_connections == old_limit


def test_a_connection_past_its_header_deadline_is_closed(server):
    old_deadline = server.header_deadline_s
    server.header_deadline_s = 1.0
    try:
        connection = socket.create_connection(("127.0.0.1", server.server_address[1]), timeout=10)
        connection.sendall(b"GET / HTTP/1.1\r\nHost: x")  # headers that never end, a byte at a time in real attacks
        started = time.monotonic()
        assert connection.recv(1024) == b""  # closed by the server
        assert time.monotonic() - started < 5
        connection.close()
    finally:
        server.header_deadline_s = old_deadline
