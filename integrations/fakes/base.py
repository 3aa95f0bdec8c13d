"""What every fake provider shares: a WSGI app that records its requests, fault switches, a loopback server.

The fakes are small, in-memory imitations of the outside APIs, faithful to the shapes in
docs/INTEGRATIONS.md. Tests and `manage.py run_fake_providers` serve them on 127.0.0.1 so the real client
code (timeouts, retries, paging, auth) talks to them over real HTTP.

Switches, on any fake:
- `fail_next(n, status=429, headers={"Retry-After": "1"})`: the next n requests get that answer;
- `slow_next(n, seconds)`: the next n answers come late (past a client's timeout);
- `fail_randomly(ratio, seed)`: from now on, that share of requests fails (429 or 5xx), reproducibly;
- `expire_token()`: the token stops working (each fake answers as its provider does).
And on the fakes of the outbound pushes (Harvest, Kantata, HubSpot), which mix in `LostAnswers`:
- `lose_next_answers(n, delay=None)` / `lose_randomly(ratio, seed)`: the write is done, then its answer is
  lost (a 502, or held past the client's timeout).
"""

import base64
import json
import random
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from socketserver import ThreadingMixIn
from urllib.parse import parse_qs
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

STATUS_TEXT = {200: "OK", 201: "Created", 204: "No Content", 400: "Bad Request", 401: "Unauthorized",
               402: "Payment Required", 403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed",
               429: "Too Many Requests", 500: "Internal Server Error", 502: "Bad Gateway",
               503: "Service Unavailable", 504: "Gateway Timeout"}


@dataclass
class RecordedRequest:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    # The answer's status, filled in once known.
    status: int = 0

    @property
    def json(self):
        return json.loads(self.body or b"null")

    def header(self, name: str) -> str:
        return self.headers.get(name.lower(), "")

    def basic_auth(self) -> tuple[str, str] | None:
        value = self.header("Authorization")
        if not value.startswith("Basic "):
            return None
        try:
            user, _, password = base64.b64decode(value[6:]).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            return None
        return user, password


@dataclass
class Answer:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json"

    @classmethod
    def json(cls, value, status: int = 200, headers: dict | None = None) -> "Answer":
        return cls(status=status, body=json.dumps(value).encode(), headers=headers or {})

    @classmethod
    def text(cls, value: str, status: int, headers: dict | None = None) -> "Answer":
        return cls(status=status, body=value.encode(), headers=headers or {}, content_type="text/plain")


@dataclass
class Fault:
    answer: Answer | None = None
    delay: float = 0.0


class FakeService:
    """Base WSGI app: subclasses implement `handle(request) -> Answer` and `random_fault()`."""

    name = "fake"

    def __init__(self):
        self.requests: list[RecordedRequest] = []
        self._faults: deque[Fault] = deque()
        self._lock = threading.Lock()
        self._random: random.Random | None = None
        self._random_ratio = 0.0

    # --- switches -------------------------------------------------------------------------------------
    def fail_next(self, count: int = 1, *, status: int = 429, headers: dict | None = None, body=None) -> None:
        answer = Answer.json(body if body is not None else {"error": STATUS_TEXT.get(status, "error")},
                             status=status, headers=headers)
        with self._lock:
            self._faults.extend(Fault(answer=answer) for _ in range(count))

    def slow_next(self, count: int = 1, *, seconds: float = 1.0) -> None:
        with self._lock:
            self._faults.extend(Fault(delay=seconds) for _ in range(count))

    def fail_randomly(self, ratio: float, *, seed: int = 0) -> None:
        self._random, self._random_ratio = random.Random(seed), ratio

    def stop_failing(self) -> None:
        with self._lock:
            self._faults.clear()
        self._random, self._random_ratio = None, 0.0

    def random_fault(self) -> Answer:
        """The failure a random fault gives: a rate limit or a server error."""
        assert self._random is not None
        if self._random.random() < 0.5:
            return Answer.json({"error": "Too Many Requests"}, status=429, headers={"Retry-After": "1"})
        return Answer.json({"error": "Internal Server Error"}, status=self._random.choice([500, 502, 503]))

    # --- the WSGI app ----------------------------------------------------------------------------------
    def handle(self, request: RecordedRequest) -> Answer:
        raise NotImplementedError

    def paths(self, method: str | None = None) -> list[str]:
        """The paths requested so far (optionally of one method), for assertions."""
        return [r.path for r in self.requests if method is None or r.method == method]

    def __call__(self, environ, start_response):
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        headers = {key[5:].replace("_", "-").lower(): value for key, value in environ.items()
                   if key.startswith("HTTP_")}
        if environ.get("CONTENT_TYPE"):
            headers["content-type"] = environ["CONTENT_TYPE"]
        request = RecordedRequest(method=environ["REQUEST_METHOD"], path=environ.get("PATH_INFO", "/"),
                                  query=parse_qs(environ.get("QUERY_STRING", "")), headers=headers, body=body)
        with self._lock:
            self.requests.append(request)
            fault = self._faults.popleft() if self._faults else None
            if fault is None and self._random is not None and self._random.random() < self._random_ratio:
                fault = Fault(answer=self.random_fault())
        if fault is not None and fault.delay:
            time.sleep(fault.delay)
        answer = fault.answer if fault is not None and fault.answer is not None else None
        if answer is None:
            try:
                answer = self.handle(request)
            except Exception as error:  # a fake's own bug shows as a 500 with the reason
                answer = Answer.text(f"fake {self.name} crashed: {error!r}", status=500)
        request.status = answer.status
        headers = [("Content-Type", answer.content_type), ("Content-Length", str(len(answer.body))),
                   *answer.headers.items()]
        start_response(f"{answer.status} {STATUS_TEXT.get(answer.status, 'Status')}", headers)
        return [answer.body]


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    # A slow answer must not hold up the next request.
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 - the stdlib's signature
        pass


class LoopbackServer:
    """Serves a WSGI app on 127.0.0.1 (a free port unless given) in a background thread."""

    def __init__(self, app, *, port: int = 0):
        self.app = app
        self._server = make_server("127.0.0.1", port, app, server_class=_ThreadingServer,
                                   handler_class=_QuietHandler)
        self.port = self._server.server_port
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=f"fake-{self.port}", daemon=True)

    def start(self) -> "LoopbackServer":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


class LostAnswers:
    """Switches for answers lost after the write was done (the fake acted; the client never hears of it).

    - `lose_next_answers(n)`: the next n successful writes answer 502, as a proxy that lost the upstream
      answer does; with `delay=seconds` the real answer is held back instead, past the client's timeout;
    - `lose_randomly(ratio, seed)`: that share of successful writes loses its answer, reproducibly.
    """

    def _setup_lost_answers(self) -> None:
        self._lost: deque[float | None] = deque()
        self._lost_random: random.Random | None = None
        self._lost_ratio = 0.0
        self._lost_lock = threading.Lock()
        self.lost_answers = 0

    def lose_next_answers(self, count: int = 1, *, delay: float | None = None) -> None:
        with self._lost_lock:
            self._lost.extend([delay] * count)

    def lose_randomly(self, ratio: float, *, seed: int = 0) -> None:
        self._lost_random, self._lost_ratio = random.Random(seed), ratio

    def stop_losing(self) -> None:
        with self._lost_lock:
            self._lost.clear()
        self._lost_random, self._lost_ratio = None, 0.0

    def deliver_or_lose(self, request: RecordedRequest, answer: Answer, *,
                        write: bool | None = None) -> Answer:
        """The answer to a successful write, unless a switch says it is lost (reads are never lost)."""
        write = request.method != "GET" if write is None else write
        if not write or not 200 <= answer.status < 300:
            return answer
        with self._lost_lock:
            if self._lost:
                lose, delay = True, self._lost.popleft()
            else:
                lose = self._lost_random is not None and self._lost_random.random() < self._lost_ratio
                delay = None
            if lose:
                self.lost_answers += 1
        if not lose:
            return answer
        if delay is not None:
            time.sleep(delay)
            return answer
        return Answer.text("Bad Gateway: the upstream connection closed before its answer was read",
                           status=502)
