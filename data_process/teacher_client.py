"""The teacher side of `distill_data.py`: one chat completion per sample from any OpenAI-compatible endpoint.

`Teacher.complete` sends one request through the official ``openai`` client (its own retries switched off) and
retries it here: exponential back-off with jitter on 429 (``Retry-After`` / ``retry-after-ms`` honoured), 5xx,
408/409, timeouts, dropped connections and malformed response bodies. It never raises for a per-sample problem: a
request that keeps failing comes back as a `TeacherReply` with ``error`` set. Only configuration errors that would
fail every sample (401, 403, 404: bad key, forbidden, wrong model or URL) raise `FatalTeacherError`.

The API key is kept in this module's client only; every error text that leaves it passes through `scrub`.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import random
import re
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import openai

FATAL_STATUS = (401, 403, 404)
RETRY_STATUS = (408, 409, 429)
MAX_DETAIL_CHARS = 500
_BEARER = re.compile(r"(bearer\s+)[^\s'\",}]+", re.IGNORECASE)


class FatalTeacherError(RuntimeError):
    """A configuration error every request would hit (message already scrubbed of the key)."""


class MalformedResponse(ValueError):
    """A 200 response whose body is not a chat completion."""


def scrub(text: str, secrets: tuple[str, ...]) -> str:
    """``text`` with every secret (and any ``Bearer <token>``) replaced by ``***``."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return _BEARER.sub(r"\1***", text)


def base_url_host(base_url: str) -> str:
    """``host[:port]`` of the base URL (no scheme, path, query or credentials)."""
    parts = urlsplit(base_url)
    host = parts.hostname or ""
    return f"{host}:{parts.port}" if parts.port else host


def wrap_reasoning(content: str, reasoning: str | None) -> str:
    """The trajectory text: a separate reasoning field becomes ``<think>…</think>`` before the content.

    Without a separate field (or with an empty one) the content is returned unchanged, inline ``<think>`` included.
    """
    if not reasoning or not reasoning.strip():
        return content
    return f"<think>{reasoning.strip()}</think>\n{content.lstrip()}"


def parse_completion(body: str) -> dict[str, Any]:
    """content, reasoning, finish_reason, usage and model of a chat-completion body; `MalformedResponse` if not one.

    The reasoning is read from ``reasoning_content`` (DeepSeek, older vLLM) or ``reasoning`` (newer vLLM).
    """
    try:
        data = json.loads(body)
    except ValueError as exc:
        raise MalformedResponse(f"body is not JSON ({exc.msg} at char {exc.pos} of {len(body)})") from None
    if not isinstance(data, dict):
        raise MalformedResponse(f"body is a JSON {type(data).__name__}, not an object")
    choices = data.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise MalformedResponse("no choices in the response")
    message = choices[0].get("message")
    if not isinstance(message, dict):
        raise MalformedResponse("choices[0] has no message")
    content = message.get("content")
    if content is not None and not isinstance(content, str):
        raise MalformedResponse(f"message content is a {type(content).__name__}")
    reasoning = message.get("reasoning_content", message.get("reasoning"))
    if reasoning is not None and not isinstance(reasoning, str):
        raise MalformedResponse(f"reasoning is a {type(reasoning).__name__}")
    usage = data.get("usage") if isinstance(data.get("usage"), dict) else None
    return {
        "content": content or "",
        "reasoning": reasoning,
        "finish_reason": choices[0].get("finish_reason"),
        "usage": usage,
        "response_model": data.get("model"),
    }


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


@dataclass
class TeacherConfig:
    base_url: str
    model: str
    api_key: str
    timeout: float = 600.0
    max_retries: int = 6
    backoff_base: float = 1.0
    backoff_max: float = 60.0
    #: request parameters besides model/messages (temperature, top_p, max_tokens, seed, …); None values are omitted
    sampling: dict[str, Any] = field(default_factory=dict)
    extra_body: dict[str, Any] | None = None


@dataclass
class TeacherReply:
    output: str | None = None
    content: str | None = None
    reasoning: str | None = None
    finish_reason: str | None = None
    usage: dict[str, Any] | None = None
    response_model: str | None = None
    attempts: int = 0
    retries: dict[str, int] = field(default_factory=dict)
    error: str | None = None
    detail: str = ""


class Teacher:
    """Async teacher client: ``async with Teacher(config) as teacher: await teacher.complete(system, query)``."""

    def __init__(self, config: TeacherConfig, rng: random.Random | None = None) -> None:
        self.config = config
        self.rng = rng or random.Random()
        self.requests = 0
        self.retries: Counter[str] = Counter()
        self._client: openai.AsyncOpenAI | None = None

    async def __aenter__(self) -> Teacher:
        self._client = openai.AsyncOpenAI(
            api_key=self.config.api_key,
            base_url=self.config.base_url,
            max_retries=0,
            timeout=self.config.timeout,
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._client is not None:
            await self._client.close()

    def scrub(self, text: str) -> str:
        return scrub(text, (self.config.api_key,))

    def backoff(self, retry: int, retry_after: float | None = None) -> float:
        """Delay before retry number ``retry`` (0-based): jittered exponential, at least ``retry_after``."""
        ceiling = min(self.config.backoff_max, self.config.backoff_base * 2**retry)
        delay = self.rng.uniform(ceiling / 2, ceiling)
        return max(delay, retry_after) if retry_after is not None else delay

    async def _attempt(self, messages: list[dict[str, str]]) -> dict[str, Any]:
        assert self._client is not None, "use Teacher as an async context manager"
        params = {k: v for k, v in self.config.sampling.items() if v is not None}
        call = self._client.chat.completions.with_raw_response.create(
            model=self.config.model, messages=messages, extra_body=self.config.extra_body, **params
        )
        raw = await asyncio.wait_for(call, timeout=self.config.timeout)
        return parse_completion(raw.http_response.text)

    async def complete(self, system: str, query: str) -> TeacherReply:
        messages = [{"role": "system", "content": system}, {"role": "user", "content": query}]
        reply = TeacherReply()
        for retry in range(self.config.max_retries + 1):
            reply.attempts += 1
            self.requests += 1
            retry_after = None
            try:
                parsed = await self._attempt(messages)
            except openai.APIStatusError as exc:
                status = exc.status_code
                reason, detail = f"http_{status}", self.scrub(str(exc))
                if status in FATAL_STATUS:
                    raise FatalTeacherError(f"teacher answered {status}: {detail[:MAX_DETAIL_CHARS]}") from None
                if status < 500 and status not in RETRY_STATUS:
                    reply.error, reply.detail = reason, detail[:MAX_DETAIL_CHARS]
                    return reply  # a client error specific to this request: retrying will not help
                retry_after = retry_after_seconds(exc.response.headers)
            except (openai.APITimeoutError, asyncio.TimeoutError, TimeoutError):
                reason, detail = "timeout", f"no complete response within {self.config.timeout:g} s"
            except openai.APIConnectionError as exc:
                cause = exc.__cause__
                reason = "connection_error"
                detail = self.scrub(f"{exc}: {type(cause).__name__}: {cause}" if cause else str(exc))
            except MalformedResponse as exc:
                reason, detail = "malformed_response", self.scrub(str(exc))
            except openai.OpenAIError as exc:
                reason, detail = f"openai_{type(exc).__name__}", self.scrub(str(exc))
            except Exception as exc:  # noqa: BLE001 - anything else the HTTP stack raises: retry, never crash the run
                reason, detail = f"error_{type(exc).__name__}", self.scrub(str(exc))
            else:
                reply.output = wrap_reasoning(parsed["content"], parsed["reasoning"])
                reply.content, reply.reasoning = parsed["content"], parsed["reasoning"]
                reply.finish_reason, reply.usage = parsed["finish_reason"], parsed["usage"]
                reply.response_model = parsed["response_model"]
                return reply
            reply.error, reply.detail = reason, detail[:MAX_DETAIL_CHARS]
            if retry == self.config.max_retries:
                break
            reply.retries[reason] = reply.retries.get(reason, 0) + 1
            self.retries[reason] += 1
            await asyncio.sleep(self.backoff(retry, retry_after))
        return reply
