"""Generation against an OpenAI-compatible server (vLLM, SGLang, …): ``(id, messages)`` pairs → raw text outputs.

Shared by the API-Bank, ACEBench (and BFCL) evaluators. Standard library only, so scorers and tests need no
``openai`` package. Features:

* ``endpoint="chat"`` posts ``{model, messages}`` to ``{base_url}/chat/completions``; ``endpoint="completions"`` posts
  ``{model, prompt}`` to ``{base_url}/completions`` with the prompt assembled by :func:`tool_n1.prompts.chatml` (as the
  original BFCL handler did for Qwen models);
* a thread pool bounded by ``concurrency`` sharing the project's one HTTP client (``tool_n1.openai_client``):
  per-request ``timeout``; ``retries`` with exponential back-off on connection errors, timeouts, HTTP 408/409/429/
  5xx (``Retry-After`` honoured) and malformed bodies; other 4xx not retried; the server's error message kept; a
  401/403/404 or a run of unanswered requests stops the run instead of failing every item;
* a resumable JSON-lines file of raw outputs, one ``{"id", "output"}`` line per finished item, appended as results
  arrive: a rerun skips the ids already there (failed items are not written, so they are retried next time).
* the command-line flags of the evaluators (:func:`add_cli_flags`; API-Bank and ACEBench add
  :func:`add_benchmark_flags`) and their choice of outputs: echo, saved predictions or generation
  (:func:`benchmark_outputs`).

The API key is read from an environment variable (``api_key_env``) and never written anywhere.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tool_n1.openai_client import (
    ClientConfig,
    FatalServerError,
    OpenAIClient,
    ServerUnreachable,
    parse_chat_completion,
    parse_text_completion,
)
from tool_n1.prompts import chatml


@dataclass
class GenerationConfig:
    base_url: str
    model: str
    api_key_env: str | None = None
    endpoint: str = "chat"  # "chat" or "completions"
    temperature: float = 0.0
    max_tokens: int = 2048
    concurrency: int = 8
    timeout: float = 120.0
    retries: int = 3
    backoff: float = 1.0
    #: requests in a row without any answer before generation stops (0 = never)
    max_connection_failures: int = 16


class GenerationError(RuntimeError):
    """A request that failed after all retries (the message never contains the API key)."""


class IncompleteGeneration(RuntimeError):
    """Generation left items without an output (server unreachable, refused, …): the run has no score."""


def read_outputs(path: str | Path, *, counts: dict[str, int] | None = None) -> dict[str, Any]:
    """``{id: output}`` from a raw-output JSON-lines file (later lines win).

    A torn last line (no newline at the end: a write cut off by a kill) is ignored; any other line that is not an
    ``{id, output}`` object is skipped and counted under ``counts["unreadable_lines"]`` (with ``counts``) so its item
    scores as missing. ``output`` is kept as stored, also when it is not text (the scorers count that apart).
    """
    outputs: dict[str, Any] = {}
    path = Path(path)
    if not path.exists():
        return outputs
    data = path.read_bytes()
    lines = data.split(b"\n")
    torn = lines.pop() if lines else b""  # after the final newline: b"" unless the last line is torn
    unreadable = 0
    for line in lines:
        if not line.strip():
            continue
        try:
            record = json.loads(line.decode("utf-8"))
            outputs[str(record["id"])] = record["output"]
        except (ValueError, KeyError, TypeError, RecursionError):
            unreadable += 1
    if counts is not None:
        counts["unreadable_lines"] = counts.get("unreadable_lines", 0) + unreadable
        counts["torn_last_line"] = int(bool(torn.strip()))
    if unreadable:
        print(f"{path}: {unreadable} unreadable line(s) skipped (their items count as missing)", flush=True)
    return outputs


def drop_torn_tail(path: str | Path) -> None:
    """Cut a torn last line (no final newline) off ``path`` so that appending starts on a fresh line."""
    path = Path(path)
    if not path.exists() or path.stat().st_size == 0:
        return
    with path.open("rb+") as handle:
        data = handle.read()
        if data.endswith(b"\n"):
            return
        handle.truncate(data.rfind(b"\n") + 1)


def _request_body(config: GenerationConfig, messages: list[dict[str, Any]]) -> tuple[str, dict[str, Any]]:
    body: dict[str, Any] = {"model": config.model, "temperature": config.temperature, "max_tokens": config.max_tokens}
    if config.endpoint == "chat":
        return "/chat/completions", {**body, "messages": messages}
    if config.endpoint == "completions":
        return "/completions", {**body, "prompt": chatml(messages)}
    raise ValueError(f"unknown endpoint {config.endpoint!r}; valid: 'chat', 'completions'")


def make_client(config: GenerationConfig) -> OpenAIClient:
    """The project's HTTP client (``tool_n1.openai_client``) for ``config``; one per run, shared by all threads."""
    key = os.environ.get(config.api_key_env, "") if config.api_key_env else ""
    return OpenAIClient(
        ClientConfig(
            config.base_url,
            key,
            timeout=config.timeout,
            max_retries=config.retries,
            backoff_base=config.backoff,
            backoff_max=60.0,
            max_connection_failures=config.max_connection_failures,
        )
    )


def complete(config: GenerationConfig, messages: list[dict[str, Any]], client: OpenAIClient | None = None) -> str:
    """One request with retries; returns the raw text of the first choice.

    Raises :class:`GenerationError` when the request failed for good (``"<url>: HTTP 400: <server's message> after
    1 attempt(s)"``), and ``FatalServerError`` / ``ServerUnreachable`` once the client has stopped (bad key, server
    down).
    """
    client = client or make_client(config)
    path, body = _request_body(config, messages)
    parse = parse_chat_completion if config.endpoint == "chat" else parse_text_completion
    reply = client.post(path, body, parse)
    if not reply.ok:
        raise GenerationError(f"{client.scrub(config.base_url.rstrip('/') + path)}: {client.describe_failure(reply)}")
    return reply.value["content"] if config.endpoint == "chat" else reply.value["text"]


def generate(
    items: Sequence[tuple[str, list[dict[str, Any]]]] | Iterable[tuple[str, list[dict[str, Any]]]],
    config: GenerationConfig,
    output_path: str | Path,
    *,
    progress: bool = True,
) -> dict[str, str]:
    """Generate every item not yet in ``output_path``; return ``{id: raw output}`` for all items that have one.

    Items that still fail after the retries are reported on stderr and left out (rerun to retry them). A 401, 403
    or 404 (bad key, wrong model or URL), or a run of requests without any answer (server down), stops generation
    with ``SystemExit`` and a clear message instead of sending every item; what was generated stays saved.
    """
    items = list(items)
    ids = [item_id for item_id, _ in items]
    if len(set(ids)) != len(ids):
        raise ValueError("item ids must be unique")
    output_path = Path(output_path)
    output_path.parent.mkdir(parents=True, exist_ok=True)
    drop_torn_tail(output_path)
    done = read_outputs(output_path)
    todo = [(item_id, messages) for item_id, messages in items if item_id not in done]
    lock = threading.Lock()
    failures: list[str] = []
    client = make_client(config)
    with output_path.open("a", encoding="utf-8") as handle, ThreadPoolExecutor(max(1, config.concurrency)) as pool:
        futures = {pool.submit(complete, config, messages, client): item_id for item_id, messages in todo}
        for count, future in enumerate(as_completed(futures), 1):
            item_id = futures[future]
            try:
                text = future.result()
            except GenerationError as exc:
                failures.append(f"{item_id}: {exc}")
                continue
            except (FatalServerError, ServerUnreachable) as exc:
                for pending in futures:
                    pending.cancel()
                raise SystemExit(
                    f"error: {exc}\nstopped after {len(done)} of {len(ids)} item(s); finished ones are saved in "
                    f"{output_path}: rerun the same command to resume"
                ) from None
            with lock:
                handle.write(json.dumps({"id": item_id, "output": text}, ensure_ascii=False) + "\n")
                handle.flush()
                done[item_id] = text
            if progress and (count % 50 == 0 or count == len(todo)):
                print(f"generated {count}/{len(todo)}", flush=True)
    if failures:
        print(f"{len(failures)} item(s) failed (rerun to retry):\n  " + "\n  ".join(failures[:10]), flush=True)
    return {item_id: done[item_id] for item_id in ids if item_id in done}


def add_cli_flags(parser: Any) -> None:
    """The generation flags shared by the evaluators' command lines."""
    parser.add_argument("--base-url", help="OpenAI-compatible server, e.g. http://127.0.0.1:8000/v1 (generate mode)")
    parser.add_argument("--model", help="served model name (as the server knows it)")
    parser.add_argument("--api-key-env", default=None, help="environment variable holding the API key (optional)")
    parser.add_argument(
        "--endpoint",
        choices=["chat", "completions"],
        default="chat",
        help="chat: /chat/completions (server's chat template); completions: /completions with our ChatML prompt "
        "(default: chat)",
    )
    parser.add_argument("--temperature", type=float, default=0.0, help="sampling temperature (default 0.0)")
    parser.add_argument("--max-tokens", type=int, default=2048, help="completion token limit (default 2048)")
    parser.add_argument("--concurrency", type=int, default=8, help="requests in flight at most (default 8)")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds per request (default 120)")
    parser.add_argument("--retries", type=int, default=3, help="retries per request (default 3)")


def add_benchmark_flags(parser: Any, *, limit_help: str) -> None:
    """The flags of the API-Bank and ACEBench command lines (output folder, prompt, output source), then
    :func:`add_cli_flags`; ``limit_help`` says what ``--limit`` counts."""
    parser.add_argument("--output", required=True, help="output folder: raw.jsonl (generations) and report.json")
    parser.add_argument(
        "--prompt",
        choices=["train", "bfcl"],
        default="train",
        help="system prompt: train = the RL training prompt (default), bfcl = the original BFCL handler's",
    )
    parser.add_argument("--predictions", help="score this raw-output JSONL ({id, output} lines) instead of generating")
    parser.add_argument("--echo", action="store_true", help="score ground-truth replies (ceiling; no server)")
    parser.add_argument("--limit", type=int, help=limit_help)
    parser.add_argument(
        "--block",
        choices=["first", "last", "all"],
        default="first",
        help="which <tool_call> block of a reply is scored (tool_n1.parsing.parse_response): first "
        "(default: the original Tool-N1 evaluation code read the first block), last (the training "
        "reward), all (every block outside <think>)",
    )
    add_cli_flags(parser)


def benchmark_outputs(
    args: Any,
    items: Callable[[], Iterable[tuple[str, list[dict[str, Any]]]]],
    echo: Callable[[], dict[str, str]],
) -> tuple[dict[str, str], str]:
    """``({id: raw output}, model label)`` for the flags of :func:`add_benchmark_flags`: ground-truth replies
    (``echo()``) with ``--echo``, else the ``--predictions`` file, else generation of ``items()`` into
    ``<--output>/raw.jsonl`` (resumable)."""
    if args.echo:
        return echo(), "ground-truth echo"
    if args.predictions:
        return read_outputs(args.predictions), f"predictions {args.predictions}"
    config = config_from_args(args)
    wanted = list(items())
    try:
        outputs = generate(wanted, config, Path(args.output) / "raw.jsonl")
    except SystemExit as exc:  # the client stopped the run (bad key, server down)
        raise IncompleteGeneration(f"{str(exc.code).removeprefix('error: ')}; no score is written") from None
    missing = [item_id for item_id, _ in wanted if item_id not in outputs]
    if missing:
        raise IncompleteGeneration(
            f"{len(missing)} of {len(wanted)} item(s) have no output from {config.base_url} (server unreachable or "
            f"refusing; see the errors above); no score is written. Rerun the same command to resume."
        )
    return outputs, args.model


def config_from_args(args: Any) -> GenerationConfig:
    if not args.base_url or not args.model:
        raise SystemExit("generation needs --base-url and --model (or score saved outputs with --predictions)")
    return GenerationConfig(
        base_url=args.base_url,
        model=args.model,
        api_key_env=args.api_key_env,
        endpoint=args.endpoint,
        temperature=args.temperature,
        max_tokens=args.max_tokens,
        concurrency=args.concurrency,
        timeout=args.timeout,
        retries=args.retries,
    )
