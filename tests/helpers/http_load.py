"""A bounded load of HTTP POSTs from concurrent clients, for the demo's tests and benchmarks/demo_load.py."""

from __future__ import annotations

import http.client
import statistics
import threading
import time
from collections import Counter


def load(port: int, body: bytes, requests: int = 200, clients: int = 50, path: str = "/predict") -> dict:
    """``requests`` POSTs of ``body`` to 127.0.0.1:``port`` from ``clients`` threads that start together: the
    statuses, the connections reset or refused, and the latency percentiles in milliseconds."""
    statuses: Counter = Counter()
    latencies: list[float] = []
    lock = threading.Lock()
    todo = iter(range(requests))
    start = threading.Barrier(clients)

    def client() -> None:
        start.wait()
        while True:
            with lock:
                if next(todo, None) is None:
                    return
            began = time.perf_counter()
            try:
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
                connection.request("POST", path, body, {"Content-Type": "image/png"})
                response = connection.getresponse()
                response.read()
                connection.close()
                outcome = response.status
            except OSError as err:
                outcome = type(err).__name__
            with lock:
                statuses[outcome] += 1
                latencies.append((time.perf_counter() - began) * 1000)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    began = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    cuts = statistics.quantiles(latencies, n=100)
    return {
        "requests": requests,
        "clients": clients,
        "statuses": dict(statuses),
        "p50_ms": round(cuts[49], 1),
        "p99_ms": round(cuts[98], 1),
        "seconds": round(time.perf_counter() - began, 2),
    }
