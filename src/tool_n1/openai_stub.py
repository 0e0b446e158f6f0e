"""A local OpenAI-compatible chat-completions stand-in for tests, benchmarks and offline demos (loopback only).

It answers ``POST …/chat/completions`` from canned teacher outputs keyed by the user message (the query), and can
inject faults. ``POST …/completions`` (text completions, as bfcl-eval's local-model handlers send) is answered the
same way with the prompt string as the query, and ``GET …/models`` lists one model (a server-readiness probe). An
optional ``responder(body) -> Action | None`` is asked first, for answers computed from the request.

A *plan* maps a query to a list of actions consumed one per request (the last one repeats); a query without a plan
gets ``default`` (``None``: a 404-style error). Actions are :class:`Action` values:

* ``Action.ok(content, reasoning=None, delay=0)``: a normal completion (``reasoning`` goes to ``reasoning_content``);
* ``Action.status(code, body=None, headers=None)``: an error status (500, 429 with ``Retry-After``, 401, …);
* ``Action.slow(seconds, content)``: answers only after ``seconds`` (to exceed the client timeout);
* ``Action.malformed()``: 200 with a body that is not JSON; ``Action.no_choices()``: 200, JSON without choices;
* ``Action.truncated()``: announces a longer ``Content-Length`` than it sends, then closes the connection;
* ``Action.drop()``: closes the connection without any response;
* ``Action.echo_auth(code)``: an error whose body echoes the ``Authorization`` header (a key-leak trap).

Every request is logged (query, arrival/finish time, Authorization header) and the peak number of requests in
flight is tracked, so tests can assert on retries, back-off delays and real concurrency. With ``api_key`` set, every
request (``GET …/models`` included) without ``Authorization: Bearer <api_key>`` gets a 401; ``models_requests``
lists the Authorization header of each ``GET …/models``.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Action:
    kind: str
    content: str = ""
    reasoning: str | None = None
    delay: float = 0.0
    code: int = 200
    body: str | None = None
    headers: tuple[tuple[str, str], ...] = ()

    @classmethod
    def ok(cls, content: str, reasoning: str | None = None, delay: float = 0.0) -> Action:
        return cls("ok", content=content, reasoning=reasoning, delay=delay)

    @classmethod
    def status(cls, code: int, body: str | None = None, headers: dict[str, str] | None = None) -> Action:
        return cls("status", code=code, body=body, headers=tuple((headers or {}).items()))

    @classmethod
    def slow(cls, seconds: float, content: str) -> Action:
        return cls("ok", content=content, delay=seconds)

    @classmethod
    def malformed(cls) -> Action:
        return cls("malformed")

    @classmethod
    def no_choices(cls) -> Action:
        return cls("no_choices")

    @classmethod
    def truncated(cls) -> Action:
        return cls("truncated")

    @classmethod
    def drop(cls) -> Action:
        return cls("drop")

    @classmethod
    def echo_auth(cls, code: int = 400) -> Action:
        return cls("echo_auth", code=code)


@dataclass
class RequestLog:
    query: str
    started: float
    finished: float = 0.0
    authorization: str = ""
    body: dict[str, Any] = field(default_factory=dict)


class StubState:
    def __init__(
        self, plans: dict[str, list[Action]], default: Action | None, latency: float, responder: Any = None
    ) -> None:
        self.plans = {query: list(actions) for query, actions in plans.items()}
        self.responder = responder
        self.default = default
        self.latency = latency
        self.lock = threading.Lock()
        self.in_flight = 0
        self.max_in_flight = 0
        self.requests: list[RequestLog] = []
        self.api_key: str | None = None
        self.models_requests: list[str] = []
        self._served: dict[str, int] = {}

    def next_action(self, query: str) -> Action:
        with self.lock:
            actions = self.plans.get(query)
            if not actions:
                return self.default or Action.status(404, json.dumps({"error": {"message": "no canned answer"}}))
            index = self._served.get(query, 0)
            self._served[query] = index + 1
            return actions[min(index, len(actions) - 1)]

    def requests_for(self, query: str) -> list[RequestLog]:
        with self.lock:
            return [r for r in self.requests if r.query == query]


def text_completion_body(text: str, model: str = "stub-teacher") -> dict[str, Any]:
    return {
        "id": "cmpl-stub",
        "object": "text_completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "text": text, "finish_reason": "stop", "logprobs": None}],
        "usage": {"prompt_tokens": 10, "completion_tokens": 20, "total_tokens": 30},
    }


def completion_body(content: str, reasoning: str | None = None, model: str = "stub-teacher") -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if reasoning is not None:
        message["reasoning_content"] = reasoning
    return {
        "id": "chatcmpl-stub",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "message": message, "finish_reason": "stop", "logprobs": None}],
        "usage": {"prompt_tokens": 10, "completion_tokens": 20, "total_tokens": 30},
    }


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - silence the default stderr log
        pass

    def _send(self, code: int, payload: bytes, headers: tuple[tuple[str, str], ...] = ()) -> None:
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)
        self.wfile.flush()

    def _key_refused(self) -> bool:
        key = self.server.state.api_key
        if key is None or self.headers.get("Authorization", "") == f"Bearer {key}":
            return False
        self._send(401, b'{"error": {"message": "invalid API key"}}')
        return True

    def do_GET(self) -> None:  # noqa: N802 - http.server naming
        if self.path.rstrip("/").endswith("/models"):
            with self.server.state.lock:
                self.server.state.models_requests.append(self.headers.get("Authorization", ""))
        if self._key_refused():
            return
        if self.path.rstrip("/").endswith("/models"):
            self._send(200, json.dumps({"object": "list", "data": [{"id": "stub", "object": "model"}]}).encode())
        else:
            self._send(404, b'{"error": {"message": "unknown path"}}')

    def do_POST(self) -> None:  # noqa: N802 - http.server naming
        state = self.server.state
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw or b"{}")
            users = [m.get("content", "") for m in body.get("messages", []) if m.get("role") == "user"]
            query = users[0] if users else str(body.get("prompt", ""))
        except (ValueError, AttributeError):
            body, query = {}, ""
        log = RequestLog(query, time.monotonic(), authorization=self.headers.get("Authorization", ""), body=body)
        with state.lock:
            state.requests.append(log)
            state.in_flight += 1
            state.max_in_flight = max(state.max_in_flight, state.in_flight)
        try:
            path = self.path.rstrip("/")
            if self._key_refused():
                return
            if not path.endswith("/completions"):
                self._send(404, b'{"error": {"message": "unknown path"}}')
                return
            action = state.responder(body) if state.responder else None
            self._answer(action or state.next_action(query), body, text=not path.endswith("/chat/completions"))
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout): nothing to do
            self.close_connection = True
        finally:
            log.finished = time.monotonic()
            with state.lock:
                state.in_flight -= 1

    def _answer(self, action: Action, body: dict[str, Any], text: bool = False) -> None:
        state = self.server.state
        delay = state.latency + action.delay
        if delay > 0:
            time.sleep(delay)
        if action.kind == "ok":
            model = str(body.get("model", "stub-teacher"))
            payload = (
                text_completion_body(action.content, model)
                if text
                else completion_body(action.content, action.reasoning, model)
            )
            self._send(200, json.dumps(payload).encode())
        elif action.kind == "status":
            payload = (action.body or json.dumps({"error": {"message": f"stub status {action.code}"}})).encode()
            self._send(action.code, payload, action.headers)
        elif action.kind == "echo_auth":
            message = f"invalid credentials: {self.headers.get('Authorization', '')}"
            self._send(action.code, json.dumps({"error": {"message": message}}).encode())
        elif action.kind == "malformed":
            self._send(200, b'{"id": "chatcmpl-stub", "choices": [{"message": ')
        elif action.kind == "no_choices":
            self._send(200, b'{"id": "chatcmpl-stub", "object": "chat.completion"}')
        elif action.kind == "truncated":
            payload = json.dumps(completion_body("<think>cut</think>")).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload[: len(payload) // 3])
            self.wfile.flush()
            self.close_connection = True
        elif action.kind == "drop":
            self.close_connection = True
        else:  # pragma: no cover - programming error in a test
            raise ValueError(action.kind)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, state: StubState) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.state = state


class OpenAIStub:
    """Context manager running the stand-in server in a daemon thread on ``127.0.0.1:<ephemeral port>``."""

    def __init__(
        self,
        plans: dict[str, list[Action]] | None = None,
        default: Action | None = None,
        latency: float = 0.0,
        responder: Any = None,
        api_key: str | None = None,
    ) -> None:
        self.state = StubState(plans or {}, default, latency, responder)
        self.state.api_key = api_key
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        assert self._server is not None, "server not started"
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def __enter__(self) -> OpenAIStub:
        self._server = _Server(self.state)
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._server is not None and self._thread is not None
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
