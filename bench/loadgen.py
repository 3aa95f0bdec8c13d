"""The fallback load tool when wrk is not installed: N threads, keep-alive HTTP/1.1, a fixed duration.

wrk is preferred (it is in Debian's packages and `make bench` installs it); this exists so the web
benchmark still runs where nothing can be installed. It reports the same figures as bench/wrk_report.lua.
Python threads share one interpreter lock, so on two cores it saturates sooner than wrk: its requests per
second are a lower bound.
"""

import http.client
import statistics
import threading
import time
from urllib.parse import urlsplit


def run_load(url: str, *, headers: dict[str, str], connections: int, seconds: float) -> dict:
    parts = urlsplit(url)
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    latencies: list[float] = []
    failures = [0]
    lock = threading.Lock()
    deadline = time.perf_counter() + seconds

    def client() -> None:
        connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
        mine, bad = [], 0
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            try:
                connection.request("GET", path, headers=headers)
                response = connection.getresponse()
                response.read()
                if response.status >= 400:
                    bad += 1
            except (OSError, http.client.HTTPException):
                bad += 1
                connection.close()
                connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
            mine.append(time.perf_counter() - started)
        connection.close()
        with lock:
            latencies.extend(mine)
            failures[0] += bad

    started = time.perf_counter()
    threads = [threading.Thread(target=client) for _ in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    duration = time.perf_counter() - started
    ordered = sorted(latencies) or [0.0]

    def percentile(fraction: float) -> float:
        return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]

    return {"requests": len(latencies), "duration_us": int(duration * 1e6), "non_2xx_3xx": failures[0],
            "connect_errors": 0, "read_errors": 0, "write_errors": 0, "timeouts": 0,
            "p50_us": int(percentile(0.50) * 1e6), "p95_us": int(percentile(0.95) * 1e6),
            "p99_us": int(percentile(0.99) * 1e6), "max_us": int(ordered[-1] * 1e6),
            "mean_us": statistics.fmean(ordered) * 1e6}
