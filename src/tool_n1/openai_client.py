"""One OpenAI-compatible HTTP client with retries, used by distillation and by every evaluator.

Standard library only (``urllib``, threads): the core stays free of third-party packages and the evaluation
environment needs no ``openai`` package. Callers that want concurrency run :meth:`OpenAIClient.post` from a thread
pool (``data_process/distill_data.py`` through asyncio's ``run_in_executor``, ``eval/openai_generate.py`` through
``ThreadPoolExecutor``); one client is shared by all threads.

What it does for every request:

* retries with jittered exponential back-off (``Retry-After`` / ``retry-after-ms`` honoured) on HTTP 408, 409, 429
  and 5xx, on timeouts, dropped connections and bodies the caller's ``parse`` rejects (:class:`MalformedResponse`);
* never retries another 4xx (400, 422, …): the reply comes back at once with the server's message;
* keeps the server's error message (``{"error": {"message": …}}``, ``{"detail": …}``, ``{"message": …}`` or the raw
  text), e.g. ``HTTP 401: Invalid API key``;
* stops the whole client after a 401, 403 or 404 (bad key, forbidden, wrong model or URL): every later or pending
  request raises :class:`FatalServerError` instead of being sent;
* stops the whole client after ``max_connection_failures`` requests in a row got no answer (connection refused,
  reset, timed out), counting across all threads: :class:`ServerUnreachable`;
* counts attempts truthfully (``Reply.attempts``) and removes the API key (and any ``Bearer`` token) from every
  message it returns or raises.

>>> client = OpenAIClient(ClientConfig("http://127.0.0.1:9/v1", max_retries=0, max_connection_failures=1))
>>> try:
...     client.post("/chat/completions", {"model": "m", "messages": []})
... except ServerUnreachable as exc:
...     print(exc)
no answer from http://127.0.0.1:9/v1 in 1 request(s) in a row: is the server running and the URL right?
"""

from __future__ import annotations

import email.utils
import http.client
import json
import random
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from tool_n1.cli import scrub

FATAL_STATUS = (401, 403, 404)
RETRY_STATUS = (408, 409, 429)
MAX_DETAIL_CHARS = 500


class FatalServerError(RuntimeError):
    """A configuration error every request would hit (401, 403, 404); the message names the server's reason."""


class ServerUnreachable(RuntimeError):
    """Too many requests in a row got no answer at all: the server is down or the URL is wrong."""


class MalformedResponse(ValueError):
    """A 200 response whose body is not what the endpoint returns."""


def base_url_host(base_url: str) -> str:
    """``host[:port]`` of the base URL (no scheme, path, query or credentials)."""
    parts = urlsplit(base_url)
    host = parts.hostname or ""
    return f"{host}:{parts.port}" if parts.port else host


def retry_after_seconds(headers: Any) -> float | None:
    """Seconds asked for by ``retry-after-ms`` or ``Retry-After`` (delta seconds or an HTTP date); else None."""
    if headers is None:
        return None
    try:
        milliseconds = headers.get("retry-after-ms")
        if milliseconds is not None:
            return max(0.0, float(milliseconds) / 1000)
        value = headers.get("retry-after")
        if value is None:
            return None
        try:
            return max(0.0, float(value))
        except ValueError:
            when = email.utils.parsedate_to_datetime(value)
            return max(0.0, when.timestamp() - time.time())
    except (TypeError, ValueError, OverflowError):
        return None


def server_message(body: bytes) -> str:
    """The human-readable reason in an error body: OpenAI's ``error.message``, FastAPI's ``detail``, a top-level
    ``message`` or ``error`` string, else the text itself (whitespace folded)."""
    text = body.decode("utf-8", errors="replace")
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):
        data = None
    if isinstance(data, dict):
        error = data.get("error")
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            return error["message"]
        for name in ("detail", "message", "error"):
            value = data.get(name)
            if isinstance(value, str):
                return value
            if value is not None and name == "detail":
                return json.dumps(value, ensure_ascii=False)
    return " ".join(text.split())


def json_object(body: bytes) -> dict[str, Any]:
    """The default ``parse``: the body as a JSON object, else :class:`MalformedResponse`."""
    try:
        data = json.loads(body)
    except ValueError as exc:
        where = f" ({exc.msg} at char {exc.pos} of {len(body)})" if isinstance(exc, json.JSONDecodeError) else ""
        raise MalformedResponse(f"body is not JSON{where}") from None
    except RecursionError:
        raise MalformedResponse("body is JSON nested too deeply") from None
    if not isinstance(data, dict):
        raise MalformedResponse(f"body is a JSON {type(data).__name__}, not an object")
    return data


def _first_choice(data: dict[str, Any]) -> dict[str, Any]:
    """``choices[0]`` of a completion body; :class:`MalformedResponse` if there is none."""
    choices = data.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise MalformedResponse("no choices in the response")
    return choices[0]


def parse_chat_completion(body: bytes) -> dict[str, Any]:
    """content, reasoning, finish_reason, usage and model of a chat-completion body; :class:`MalformedResponse`
    if it is not one. The reasoning is read from ``reasoning_content`` (DeepSeek, older vLLM) or ``reasoning``."""
    data = json_object(body)
    choice = _first_choice(data)
    message = choice.get("message")
    if not isinstance(message, dict):
        raise MalformedResponse("choices[0] has no message")
    content = message.get("content")
    if content is not None and not isinstance(content, str):
        raise MalformedResponse(f"message content is a {type(content).__name__}")
    reasoning = message.get("reasoning_content", message.get("reasoning"))
    if reasoning is not None and not isinstance(reasoning, str):
        raise MalformedResponse(f"reasoning is a {type(reasoning).__name__}")
    return {
        "content": content or "",
        "reasoning": reasoning,
        "tool_calls": message.get("tool_calls"),
        "finish_reason": choice.get("finish_reason"),
        "usage": data.get("usage") if isinstance(data.get("usage"), dict) else None,
        "response_model": data.get("model"),
    }


def parse_text_completion(body: bytes) -> dict[str, Any]:
    """``{"text": …}`` of a ``/completions`` body; :class:`MalformedResponse` if it is not one."""
    data = json_object(body)
    choice = _first_choice(data)
    text = choice.get("text")
    if not isinstance(text, str):
        raise MalformedResponse("choices[0] has no text")
    return {"text": text, "finish_reason": choice.get("finish_reason"), "response_model": data.get("model")}


@dataclass
class ClientConfig:
    base_url: str
    #: sent as ``Authorization: Bearer …``; empty: no header (a local server)
    api_key: str = ""
    #: seconds allowed per socket operation (connect, each read)
    timeout: float = 120.0
    #: retries after the first attempt, per request
    max_retries: int = 3
    backoff_base: float = 1.0
    backoff_max: float = 60.0
    #: requests in a row (across all threads) without any answer before the client stops; 0 = never stop
    max_connection_failures: int = 8


@dataclass
class Reply:
    """The outcome of one request: ``value`` (what ``parse`` returned) or ``error`` (a reason code such as
    ``http_500``, ``timeout``, ``connection_error``, ``malformed_response``) with the server's ``detail``."""

    value: Any = None
    error: str | None = None
    detail: str = ""
    attempts: int = 0
    retries: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.error is None


class _Failure(Exception):
    """One failed attempt: its reason code, the server's message, and whether a retry may help."""

    def __init__(self, reason: str, detail: str, retry: bool, retry_after: float | None = None):
        super().__init__(detail)
        self.reason = reason
        self.detail = detail
        self.retry = retry
        self.retry_after = retry_after


class OpenAIClient:
    """``OpenAIClient(ClientConfig(base_url, api_key)).post("/chat/completions", body)`` → :class:`Reply`."""

    def __init__(
        self,
        config: ClientConfig,
        rng: random.Random | None = None,
        opener: Callable[..., Any] = urllib.request.urlopen,
    ) -> None:
        self.config = config
        self.rng = rng or random.Random()
        self._open = opener
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self._stop_error: Exception | None = None
        self._no_answer_streak = 0
        self.requests = 0
        self.retries: Counter[str] = Counter()

    # ------------------------------------------------------------------ state shared by all threads
    def scrub(self, text: str) -> str:
        return scrub(text, (self.config.api_key,))

    def stop(self, error: Exception) -> None:
        """Make every later or waiting request raise ``error`` (the first stop wins)."""
        with self._lock:
            if self._stop_error is None:
                self._stop_error = error
        self._stopped.set()

    def _raise_if_stopped(self) -> None:
        if self._stop_error is not None:
            raise self._stop_error

    def _count(self, answered: bool) -> None:
        bound = self.config.max_connection_failures
        with self._lock:
            self.requests += 1
            self._no_answer_streak = 0 if answered else self._no_answer_streak + 1
            streak = self._no_answer_streak
        if not answered and bound and streak >= bound:
            self.stop(
                ServerUnreachable(
                    f"no answer from {self.scrub(self.config.base_url)} in {streak} request(s) in a row: is the "
                    "server running and the URL right?"
                )
            )

    def backoff(self, retry: int, retry_after: float | None = None) -> float:
        """Delay before retry number ``retry`` (0-based): jittered exponential, at least ``retry_after``."""
        ceiling = min(self.config.backoff_max, self.config.backoff_base * 2**retry)
        delay = self.rng.uniform(ceiling / 2, ceiling)
        return max(delay, retry_after) if retry_after is not None else delay

    # ------------------------------------------------------------------ one request
    def _attempt(self, url: str, data: bytes, parse: Callable[[bytes], Any]) -> Any:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self.config.api_key:
            headers["Authorization"] = f"Bearer {self.config.api_key}"
        request = urllib.request.Request(url, data=data, headers=headers, method="POST")
        answered = False
        try:
            with self._open(request, timeout=self.config.timeout) as response:
                answered = True
                self._count(answered=True)
                body = response.read()
        except urllib.error.HTTPError as exc:
            self._count(answered=True)
            try:
                text = server_message(exc.read() or b"")
            except (OSError, http.client.HTTPException):
                text = ""
            detail = f"HTTP {exc.code}: {text}" if text else f"HTTP {exc.code} {exc.reason}"
            retry = exc.code in RETRY_STATUS or exc.code >= 500
            raise _Failure(f"http_{exc.code}", detail, retry, retry_after_seconds(exc.headers)) from None
        except (TimeoutError, urllib.error.URLError, OSError, http.client.HTTPException) as exc:
            reason = getattr(exc, "reason", None)
            timed_out = isinstance(exc, TimeoutError) or isinstance(reason, TimeoutError)
            if not answered:
                self._count(answered=False)
            if timed_out:
                raise _Failure("timeout", f"no response within {self.config.timeout:g} s", True) from None
            cause = reason if isinstance(reason, BaseException) else exc
            raise _Failure("connection_error", f"{type(cause).__name__}: {cause}", True) from None
        try:
            return parse(body)
        except MalformedResponse as exc:
            raise _Failure("malformed_response", str(exc), True) from None

    def post(self, path: str, body: dict[str, Any], parse: Callable[[bytes], Any] = json_object) -> Reply:
        """POST ``body`` as JSON to ``base_url + path`` with retries. Never raises for a per-request problem (it
        comes back in :class:`Reply`); raises :class:`FatalServerError` or :class:`ServerUnreachable` once the
        client has stopped."""
        url = self.config.base_url.rstrip("/") + path
        data = json.dumps(body).encode()
        reply = Reply()
        for retry in range(self.config.max_retries + 1):
            self._raise_if_stopped()
            reply.attempts += 1
            try:
                reply.value = self._attempt(url, data, parse)
            except _Failure as failure:
                reply.error, reply.detail = failure.reason, self.scrub(failure.detail)[:MAX_DETAIL_CHARS]
                status = int(failure.reason[5:]) if failure.reason.startswith("http_") else None
                if status in FATAL_STATUS:
                    self.stop(FatalServerError(f"{self.scrub(url)} answered {reply.detail}"))
                self._raise_if_stopped()  # this request's failure may be the one that stopped the client
                if not failure.retry or retry == self.config.max_retries:
                    return reply
                reply.retries[failure.reason] = reply.retries.get(failure.reason, 0) + 1
                with self._lock:
                    self.retries[failure.reason] += 1
                self._stopped.wait(self.backoff(retry, failure.retry_after))
            else:
                reply.error, reply.detail = None, ""
                return reply
        return reply  # pragma: no cover - the loop always returns

    def describe_failure(self, reply: Reply) -> str:
        """``<detail> after N attempt(s)`` for a failed reply."""
        return f"{reply.detail or reply.error} after {reply.attempts} attempt(s)"
