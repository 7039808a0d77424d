"""The demo's HTTP server: the standard library's ``ThreadingHTTPServer`` with the limits a server reachable from a
browser needs, and nothing of the model.

- a request's ``Host`` must name the address served (a page that rebinds its own DNS name to 127.0.0.1 cannot read
  the answers), and a POST from another origin is refused (any web page could otherwise make the machine predict);
- ``Content-Length`` is required, a number, and at most ``max_body``; a client has ``timeout`` seconds between
  bytes and ``header_deadline_s`` in all for a request line and its headers; at most ``max_connections``
  connections are served at once and the listen backlog holds 128 more; when all are taken, a new connection takes
  the place of the one that has waited longest for its headers, so slow clients cannot fill the server;
- a request's work runs under a :class:`Gate`: a few at once, a short queue, then 503.

Broken connections (the client went away) are dropped without a traceback.
"""

from __future__ import annotations

import socket
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")


class Refused(Exception):
    """A request answered with ``status`` and a one-line ``message``, before any work."""

    def __init__(self, status: HTTPStatus, message: str) -> None:
        super().__init__(message)
        self.status = status


class Gate:
    """At most ``running`` requests do their work at once, ``waiting`` more wait at most ``wait_s`` seconds, and
    their bodies together hold at most ``max_bytes``; past any of these a request is refused with 503 before its
    body is read, so memory stays bounded whatever the clients do."""

    def __init__(self, running: int = 2, waiting: int = 64, wait_s: float = 30.0, max_bytes: int = 256_000_000):
        self._slots = threading.BoundedSemaphore(running)
        self._lock = threading.Lock()
        self._admitted = 0
        self._bytes = 0
        self.limit, self.max_bytes, self.wait_s = running + waiting, max_bytes, wait_s

    @contextmanager
    def admit(self, length: int) -> Iterator[None]:
        """Hold a place for a body of ``length`` bytes (read it inside), or raise ``Refused`` (503)."""
        with self._lock:
            if self._admitted >= self.limit or self._bytes + length > self.max_bytes:
                raise Refused(HTTPStatus.SERVICE_UNAVAILABLE, "the demo is busy: try again in a moment")
            self._admitted += 1
            self._bytes += length
        try:
            yield
        finally:
            with self._lock:
                self._admitted -= 1
                self._bytes -= length

    @contextmanager
    def run(self) -> Iterator[None]:
        """One of the ``running`` places, waited for at most ``wait_s`` seconds."""
        if not self._slots.acquire(timeout=self.wait_s):
            raise Refused(HTTPStatus.SERVICE_UNAVAILABLE, "the demo is busy: try again in a moment")
        try:
            yield
        finally:
            self._slots.release()


class GuardedServer(ThreadingHTTPServer):
    """A ``ThreadingHTTPServer`` on IPv4 or IPv6 with a bounded number of connections and a deep backlog."""

    daemon_threads = True
    request_queue_size = 128  # the standard library's 5 reset most of 50 clients arriving together
    max_connections = 256
    header_deadline_s = 10.0  # for a request line and its headers, however slowly they come

    def __init__(self, host: str, port: int, handler: type[BaseHTTPRequestHandler], public: bool) -> None:
        self.address_family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.public = public
        self._open = threading.BoundedSemaphore(self.max_connections)
        self._awaiting: dict[socket.socket, float] = {}  # connections waiting for a request's headers: deadline
        self._awaiting_lock = threading.Lock()
        super().__init__((host, port), handler)
        port = self.server_address[1]
        names = [f"[{host}]" if ":" in host else host] + (["127.0.0.1", "localhost"] if host in LOCAL_HOSTS else [])
        self.allowed_hosts = {f"{name}:{port}" for name in names} | ({"localhost"} if port == 80 else set())

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        host = "127.0.0.1" if host in ("0.0.0.0", "") else f"[{host}]" if ":" in host else host
        return f"http://{host}:{port}/"

    def process_request(self, request, client_address) -> None:
        if not self._open.acquire(blocking=False) and not (self._drop_slowest() and self._open.acquire(timeout=2)):
            super().shutdown_request(request)  # every connection is at work on a request: close this one at once
            return
        self.awaiting_headers(request)
        super().process_request(request, client_address)

    def process_request_thread(self, request, client_address) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            with self._awaiting_lock:
                self._awaiting.pop(request, None)
            self._open.release()

    def awaiting_headers(self, connection: socket.socket) -> None:
        """The connection waits for a request: it has ``header_deadline_s`` to send the line and headers."""
        with self._awaiting_lock:
            self._awaiting.pop(connection, None)  # to the end: the order is the order of the deadlines
            self._awaiting[connection] = time.monotonic() + self.header_deadline_s

    def headers_read(self, connection: socket.socket) -> None:
        with self._awaiting_lock:
            self._awaiting.pop(connection, None)

    def _drop_slowest(self) -> bool:
        """Close the connection that has waited longest for its headers, for a new one; False when none waits."""
        with self._awaiting_lock:
            connection = next(iter(self._awaiting), None)
            if connection is None:
                return False
            del self._awaiting[connection]
        self._cut(connection)
        return True

    def service_actions(self) -> None:
        """``serve_forever``'s hook, twice a second: close the connections past their header deadline."""
        now = time.monotonic()
        with self._awaiting_lock:
            late = [connection for connection, deadline in self._awaiting.items() if deadline < now]
            for connection in late:
                del self._awaiting[connection]
        for connection in late:
            self._cut(connection)

    @staticmethod
    def _cut(connection: socket.socket) -> None:
        """Wake the connection's thread from its read (which then sees the end of the stream and finishes)."""
        with suppress(OSError):
            connection.shutdown(socket.SHUT_RDWR)

    def shutdown_request(self, request) -> None:
        """A lingering close: what the client still sends is read (up to 4 MB, 2 s) before the socket closes, as
        closing with unread bytes resets the connection and the client would lose the answer it was sent."""
        try:
            request.shutdown(socket.SHUT_WR)
            request.settimeout(2)
            for _ in range(64):
                if not request.recv(65536):
                    break
        except OSError:
            pass
        self.close_request(request)

    def handle_error(self, request, client_address) -> None:
        """A client that went away is not an error of the server's; anything else is one line on stderr."""
        error = sys.exc_info()[1]
        if not isinstance(error, OSError):
            print(f"demo: a request failed: {type(error).__name__}: {error}", file=sys.stderr)


class GuardedHandler(BaseHTTPRequestHandler):
    """Request checks shared by the demo's routes; ``server`` is a :class:`GuardedServer`."""

    server: GuardedServer
    server_version = "dlwp-demo"
    timeout = 15  # seconds a client may stay silent (the standard library waits forever)
    max_body = 20_000_000  # bytes; the datamodule's max_pixels then bounds what the file decodes to
    unread = 0  # bytes of the body not read yet: dropped before a refusal, or the client would miss it

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - BaseHTTPRequestHandler's signature
        pass  # a quiet terminal: one line per request would bury the start-up message

    def handle_one_request(self) -> None:
        self.server.awaiting_headers(self.connection)  # each request on a kept-alive connection has its deadline
        super().handle_one_request()

    def parse_request(self) -> bool:
        parsed = super().parse_request()  # the request line and the headers, read
        self.server.headers_read(self.connection)
        return parsed

    def check_host(self) -> None:
        """The ``Host`` header names this server (DNS rebinding); not checked when serving in public on purpose."""
        host = self.headers.get("Host", "")
        if not self.server.public and host not in self.server.allowed_hosts:
            raise Refused(HTTPStatus.MISDIRECTED_REQUEST, f"this demo serves {self.server.url}, not {host[:100]!r}")

    def check_origin(self) -> None:
        """A browser names the page that sent a request; only the demo's own page may ask for work."""
        origin = self.headers.get("Origin")
        if origin is not None and origin != f"http://{self.headers.get('Host', '')}":
            raise Refused(HTTPStatus.FORBIDDEN, f"requests from {origin[:100]} are refused: open {self.server.url}")
        if self.headers.get("Sec-Fetch-Site") not in (None, "same-origin", "none"):
            raise Refused(HTTPStatus.FORBIDDEN, f"requests from other sites are refused: open {self.server.url}")

    def body_length(self) -> int:
        """The body's length from ``Content-Length``: required, a non-negative integer, at most ``max_body``."""
        text = self.headers.get("Content-Length")
        if text is None:
            raise Refused(HTTPStatus.LENGTH_REQUIRED, "send the file with a Content-Length")
        if not (len(text) < 20 and text.isascii() and text.strip().isdigit()):
            raise Refused(HTTPStatus.BAD_REQUEST, f"Content-Length {text[:40]!r} is not a number of bytes")
        length = self.unread = int(text)
        if "Transfer-Encoding" in self.headers:  # both: a request another server may read otherwise (smuggling)
            raise Refused(HTTPStatus.BAD_REQUEST, "send the file with a Content-Length alone, not chunked")
        if length > self.max_body:
            self.close_connection = True
            raise Refused(
                HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                f"the file has {length:,} bytes, over the limit of {self.max_body:,}: choose a smaller one",
            )
        return length

    def read_body(self, length: int) -> bytes:
        """Exactly ``length`` bytes, or ``Refused`` when the client stops sending early."""
        data = self.rfile.read(length)
        self.unread = 0
        if len(data) < length:
            self.close_connection = True
            raise Refused(HTTPStatus.BAD_REQUEST, f"the file ended after {len(data):,} of {length:,} bytes")
        return data

    def send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Content-Security-Policy", "frame-ancestors 'none'")  # not framed by another page
        if status == HTTPStatus.SERVICE_UNAVAILABLE:
            self.send_header("Retry-After", "1")
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)
