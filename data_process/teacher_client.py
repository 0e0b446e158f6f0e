"""The teacher side of `distill_data.py`: one chat completion per sample from any OpenAI-compatible endpoint.

Requests go through the project's one HTTP client, :class:`tool_n1.openai_client.OpenAIClient` (retries with
back-off, the server's error message kept, a stop after 401/403/404 or after a run of requests without any answer),
run on a thread pool as wide as ``--concurrency`` so that asyncio's workers never wait on each other.
`Teacher.complete` never raises for a per-sample problem: a request that keeps failing comes back as a
`TeacherReply` with ``error`` set. Configuration errors that would fail every sample raise `FatalServerError`;
a server that stopped answering raises `ServerUnreachable` (that sample is not written, so a rerun redoes it).

The API key is kept in the client only; every text that leaves it passes through `scrub`.
"""

from __future__ import annotations

import asyncio
import random
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from tool_n1.openai_client import ClientConfig, OpenAIClient, parse_chat_completion


def wrap_reasoning(content: str, reasoning: str | None) -> str:
    """The trajectory text: a separate reasoning field becomes ``<think>…</think>`` before the content.

    Without a separate field (or with an empty one) the content is returned unchanged, inline ``<think>`` included.
    """
    if not reasoning or not reasoning.strip():
        return content
    return f"<think>{reasoning.strip()}</think>\n{content.lstrip()}"


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
    #: samples in a row without any answer from the server before the run stops
    max_connection_failures: int = 32
    #: requests in flight at once (the thread pool's width)
    concurrency: int = 16


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
        self.client = OpenAIClient(
            ClientConfig(
                config.base_url,
                config.api_key,
                timeout=config.timeout,
                max_retries=config.max_retries,
                backoff_base=config.backoff_base,
                backoff_max=config.backoff_max,
                max_connection_failures=config.max_connection_failures,
            ),
            rng=rng,
        )
        self._pool: ThreadPoolExecutor | None = None

    @property
    def requests(self) -> int:
        return self.client.requests

    @property
    def retries(self) -> dict[str, int]:
        return dict(self.client.retries)

    async def __aenter__(self) -> Teacher:
        self._pool = ThreadPoolExecutor(max(1, self.config.concurrency), thread_name_prefix="teacher")
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)

    def scrub(self, text: str) -> str:
        return self.client.scrub(text)

    def request_body(self, system: str, query: str) -> dict[str, Any]:
        messages = [{"role": "system", "content": system}, {"role": "user", "content": query}]
        params = {k: v for k, v in self.config.sampling.items() if v is not None}
        return {"model": self.config.model, "messages": messages, **params, **(self.config.extra_body or {})}

    def complete_blocking(self, system: str, query: str) -> TeacherReply:
        result = self.client.post("/chat/completions", self.request_body(system, query), parse_chat_completion)
        reply = TeacherReply(attempts=result.attempts, retries=result.retries, error=result.error)
        reply.detail = result.detail
        if result.ok:
            parsed = result.value
            reply.output = wrap_reasoning(parsed["content"], parsed["reasoning"])
            reply.content, reply.reasoning = parsed["content"], parsed["reasoning"]
            reply.finish_reason, reply.usage = parsed["finish_reason"], parsed["usage"]
            reply.response_model = parsed["response_model"]
        return reply

    async def complete(self, system: str, query: str) -> TeacherReply:
        assert self._pool is not None, "use Teacher as an async context manager"
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, self.complete_blocking, system, query)
