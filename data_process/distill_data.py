"""Reasoning distillation: ask a teacher LLM to solve tool-calling samples, keep the trajectories our reward accepts.

Reproduces the original ``data_process/distill_data.py`` (paper §5.3.2: DeepSeek-R1 trajectories on ToolACE
single-turn samples for the SFT-vs-RL study), rewritten to be concurrent, resumable and auditable:

* input: the unified JSONL records of the data pipeline; samples selected by ``id`` (default
  ``toolace_single_turn``, as the original) and ``--limit``; query = the first human turn, tools = the record's tools;
* prompt: the original distillation system prompt, byte-exact (``--prompt distill``), or the RL training prompt
  (``--prompt train``); user message = the query only;
* teacher: any OpenAI-compatible endpoint (DeepSeek API, ``vllm serve``, llama.cpp's server, …) through the
  project's HTTP client (``tool_n1.openai_client``);
  a separate ``reasoning_content`` (DeepSeek-R1) is wrapped into ``<think>…</think>`` before the content;
* filter: kept iff ``tool_n1.reward.compute_score`` (``--reward-variant``, faithful mode) on the output, cut at the
  first ``<|eot_id|>`` as the original did, against ``json.dumps(answer)`` is at least ``--min-score`` (1);
* output: append-only JSONL, one line per attempted sample (kept, dropped or failed, with the reason); a restart
  with the same ``--output`` skips samples already there, so a killed run is simply started again.
  ``<output>.summary.json`` gets the counts at the end.

Run (from the repository root's ``data_process/`` folder, key in the environment only)::

    cd data_process && DEEPSEEK_API_KEY=... python distill_data.py --input ../data/unified.jsonl \\
        --output ../data/distill.jsonl --base-url https://api.deepseek.com --model deepseek-reasoner \\
        --api-key-env DEEPSEEK_API_KEY --concurrency 32

Against a local ``vllm serve Qwen/Qwen3-8B --reasoning-parser qwen3`` use ``--base-url http://127.0.0.1:8000/v1
--model Qwen/Qwen3-8B --api-key-env ''`` (no key). Exit status: 0 when every selected sample has a line (failed
ones included), 1 when some were left undone, 2 on a configuration error (bad flags, 401/403/404 from the teacher).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import hashlib
import json
import os
import sys
import time
import traceback
from collections import Counter
from pathlib import Path
from typing import Any

try:
    import tool_n1  # noqa: F401
except ImportError:  # running from a checkout without `pip install -e .`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from resumable_jsonl import JournalError, ResumableJsonl
from teacher_client import Teacher, TeacherConfig
from tqdm import tqdm

from tool_n1.cli import ArgumentParser, looks_like_key, scrub
from tool_n1.distillation import load_samples, system_prompt
from tool_n1.openai_client import FatalServerError, ServerUnreachable, base_url_host
from tool_n1.reward import VARIANTS, compute_score

SCHEMA_VERSION = 1
EOT = "<|eot_id|>"


def build_parser() -> argparse.ArgumentParser:
    p = ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="See the module docstring (and data_process/README.md) for the output format.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    io = p.add_argument_group("input and output")
    io.add_argument("--input", required=True, help="unified records, JSONL (one record per line)")
    io.add_argument("--output", required=True, help="append-only JSONL of attempted samples (resumed if present)")
    io.add_argument(
        "--id-filter",
        "--source",
        dest="ids",
        action="append",
        metavar="ID",
        help="record `id` to distil (repeatable or comma-separated; `all` = every id); default toolace_single_turn",
    )
    io.add_argument("--limit", type=int, default=None, help="distil only the first N selected records")
    io.add_argument(
        "--retry-failed",
        action="store_true",
        help="remove the output's `failed` lines first and attempt those samples again",
    )
    io.add_argument("--no-progress", action="store_true", help="no progress bar (stderr)")
    t = p.add_argument_group("teacher")
    t.add_argument("--base-url", default="https://api.deepseek.com", help="OpenAI-compatible API base URL")
    t.add_argument("--model", default="deepseek-reasoner", help="teacher model name")
    t.add_argument(
        "--api-key-env",
        default="DEEPSEEK_API_KEY",
        metavar="NAME",
        help="environment variable holding the API key (never pass the key itself); '' = no key (local server)",
    )
    t.add_argument(
        "--prompt",
        choices=("distill", "train"),
        default="distill",
        help="system prompt: the original distillation prompt (byte-exact) or the RL training prompt",
    )
    t.add_argument("--concurrency", type=int, default=16, help="requests in flight at once")
    t.add_argument("--timeout", type=float, default=600.0, help="seconds allowed for one request")
    t.add_argument("--max-retries", type=int, default=6, help="retries per sample after the first attempt")
    t.add_argument("--backoff-base", type=float, default=1.0, help="first retry delay ceiling, doubled per retry")
    t.add_argument("--backoff-max", type=float, default=60.0, help="largest retry delay ceiling (Retry-After wins)")
    t.add_argument(
        "--max-connection-failures",
        type=int,
        default=32,
        metavar="N",
        help="stop the run (exit 3, resumable) after N requests in a row got no answer (server down, wrong URL); "
        "0 = never stop",
    )
    s = p.add_argument_group("sampling (recorded in every output line; unset = the server's default)")
    s.add_argument("--temperature", type=float, default=None, help="sampling temperature")
    s.add_argument("--top-p", type=float, default=None, help="nucleus sampling top_p")
    s.add_argument("--max-tokens", type=int, default=None, help="max_tokens of the completion")
    s.add_argument("--seed", type=int, default=None, help="sampling seed (where the server supports it)")
    s.add_argument("--presence-penalty", type=float, default=None, help="presence_penalty")
    s.add_argument("--frequency-penalty", type=float, default=None, help="frequency_penalty")
    s.add_argument(
        "--extra-body",
        default=None,
        metavar="JSON",
        help="extra request fields as a JSON object, e.g. '{\"top_k\": 20}' for vLLM",
    )
    r = p.add_argument_group("filter")
    r.add_argument("--reward-variant", choices=VARIANTS, default="binary", help="tool_n1.reward variant")
    r.add_argument("--reward-mode", choices=("faithful", "improved"), default="faithful", help="tool_n1.reward mode")
    r.add_argument("--min-score", type=float, default=1.0, help="keep a trajectory iff its reward is >= this")
    return p


def drop_reason(reward: dict[str, Any]) -> str:
    if not reward["call_parsed"]:
        return "tool_call_not_parsed"
    if not reward["format_ok"]:
        return "missing_think_tags"
    if not reward["names_match"]:
        return "names_mismatch"
    if not reward["calls_match"]:
        return "arguments_mismatch"
    return "score_below_min"


def now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds")


async def distil_one(teacher: Teacher, args: argparse.Namespace, sample: dict[str, Any]) -> dict[str, Any]:
    system = system_prompt(args.prompt, sample)
    started, clock = now(), time.monotonic()
    reply = await teacher.complete(system, sample["query"])
    line: dict[str, Any] = {
        "schema": SCHEMA_VERSION,
        "key": sample["key"],
        "source_id": sample["source_id"],
        "input_line": sample["line"],
        "status": "failed",
        "reason": reply.error,
        "detail": reply.detail,
        "teacher": {
            "model": args.model,
            "base_url_host": base_url_host(args.base_url),
            "response_model": reply.response_model,
        },
        "prompt": {"kind": args.prompt, "sha256": hashlib.sha256(system.encode()).hexdigest()},
        "sampling": teacher.config.sampling | {"extra_body": teacher.config.extra_body},
        "system_prompt": system,
        "query": sample["query"],
        "answer": sample["answer"],
        "output": reply.output,
        "content": reply.content,
        "reasoning_content": reply.reasoning,
        "finish_reason": reply.finish_reason,
        "usage": reply.usage,
        "reward": None,
        "attempts": reply.attempts,
        "retries": reply.retries,
        "started_at": started,
        "finished_at": now(),
        "latency_s": round(time.monotonic() - clock, 3),
    }
    if reply.output is not None:
        text = reply.output.split(EOT, 1)[0]
        reward = compute_score(
            "toolcall", text, json.dumps(sample["answer"]), variant=args.reward_variant, mode=args.reward_mode
        )
        kept = reward["score"] >= args.min_score
        line["reward"] = {"variant": args.reward_variant, "mode": args.reward_mode, **reward}
        line["status"] = "kept" if kept else "dropped"
        line["reason"] = None if kept else drop_reason(reward)
        line["detail"] = "" if kept else reward["parse_error"]
    return line


def tally(lines: Any) -> dict[str, Any]:
    status, dropped, failed = Counter(), Counter(), Counter()
    for line in lines:
        status[line.get("status")] += 1
        if line.get("status") == "dropped":
            dropped[line.get("reason")] += 1
        elif line.get("status") == "failed":
            failed[line.get("reason")] += 1
    return {
        "kept": status["kept"],
        "dropped": status["dropped"],
        "failed": status["failed"],
        "dropped_by_reason": dict(dropped),
        "failed_by_reason": dict(failed),
    }


async def run(
    args: argparse.Namespace, todo: list[dict[str, Any]], journal: ResumableJsonl, config: TeacherConfig
) -> dict[str, Any]:
    """Distil ``todo`` with ``args.concurrency`` workers; one writer appends finished lines in fsynced batches."""
    queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    for sample in todo:
        queue.put_nowait(sample)
    written: asyncio.Queue[tuple[dict[str, Any], asyncio.Future] | None] = asyncio.Queue()
    done_lines: list[dict[str, Any]] = []
    counts: Counter[str] = Counter()
    bar = tqdm(total=len(todo), desc="distill", unit="sample", disable=args.no_progress, file=sys.stderr)

    async def worker(teacher: Teacher) -> None:
        while not writer_task.done():  # a dead writer (disk full…) stops the run instead of wasting requests
            try:
                sample = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            line = await distil_one(teacher, args, sample)
            # wait until the line is on disk before taking the next sample: a kill then redoes at most one
            # sample per worker (a line either in flight or unwritten, never both)
            on_disk = asyncio.get_running_loop().create_future()
            await written.put((line, on_disk))
            await asyncio.wait({on_disk, writer_task}, return_when=asyncio.FIRST_COMPLETED)

    async def writer() -> None:
        finished = False
        while not finished:
            batch = [await written.get()]
            while not written.empty():
                batch.append(written.get_nowait())
            finished = batch[-1] is None
            items = [item for item in batch if item is not None]
            lines = [line for line, _ in items]
            await asyncio.to_thread(journal.append, lines)
            for _, on_disk in items:
                on_disk.set_result(None)
            done_lines.extend(lines)
            counts.update(line["status"] for line in lines)
            bar.set_postfix(kept=counts["kept"], dropped=counts["dropped"], failed=counts["failed"], refresh=False)
            bar.update(len(lines))

    async with Teacher(config) as teacher:
        writer_task = asyncio.create_task(writer())
        workers = [asyncio.create_task(worker(teacher)) for _ in range(max(1, min(args.concurrency, len(todo))))]
        try:
            await asyncio.gather(*workers)
        except BaseException:
            for task in workers:
                task.cancel()
            await written.put(None)
            await asyncio.wait_for(writer_task, timeout=30)  # keep what is finished
            bar.close()
            raise
        await written.put(None)
        await writer_task
        bar.close()
        return {"lines": done_lines, "requests": teacher.requests, "retries": dict(teacher.retries)}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.api_key_env and looks_like_key(args.api_key_env):
        print(
            "error: --api-key-env takes the NAME of an environment variable holding the key, and its value looks "
            "like a key itself; it is not echoed. Put the key in a variable, e.g. DEEPSEEK_API_KEY=... , and pass "
            "--api-key-env DEEPSEEK_API_KEY",
            file=sys.stderr,
        )
        return 2
    api_key = os.environ.get(args.api_key_env, "") if args.api_key_env else "EMPTY"
    secrets = (api_key,) if args.api_key_env else ()
    if not api_key:
        print(
            f"error: environment variable {args.api_key_env} is unset or empty (use --api-key-env '' for no key)",
            file=sys.stderr,
        )
        return 2
    if args.concurrency < 1 or args.max_retries < 0 or args.timeout <= 0 or args.max_connection_failures < 0:
        print(
            "error: --concurrency >= 1, --max-retries >= 0, --timeout > 0 and --max-connection-failures >= 0 are "
            "required",
            file=sys.stderr,
        )
        return 2
    try:
        extra_body = json.loads(args.extra_body) if args.extra_body else None
        if extra_body is not None and not isinstance(extra_body, dict):
            raise ValueError("not a JSON object")
    except ValueError as exc:
        print(f"error: --extra-body: {exc}", file=sys.stderr)
        return 2
    raw_ids = [part.strip() for value in (args.ids or ["toolace_single_turn"]) for part in value.split(",")]
    ids = None if "all" in raw_ids else {i for i in raw_ids if i}
    try:
        samples, skipped = load_samples(args.input, ids, args.limit)
    except OSError as exc:
        print(f"error: cannot read --input: {exc}", file=sys.stderr)
        return 2
    sampling = {
        "temperature": args.temperature,
        "top_p": args.top_p,
        "max_tokens": args.max_tokens,
        "seed": args.seed,
        "presence_penalty": args.presence_penalty,
        "frequency_penalty": args.frequency_penalty,
    }
    config = TeacherConfig(
        args.base_url,
        args.model,
        api_key,
        args.timeout,
        args.max_retries,
        args.backoff_base,
        args.backoff_max,
        sampling,
        extra_body,
        max_connection_failures=args.max_connection_failures,
        concurrency=args.concurrency,
    )

    # every line is scrubbed whole: a reply may echo the key in its content, reasoning, model or usage
    journal = ResumableJsonl(args.output, redact=lambda line: scrub(line, secrets))
    started = time.monotonic()
    try:
        existing = journal.open()
        if args.retry_failed:
            journal.drop(lambda line: line.get("status") == "failed")
            existing = {k: v for k, v in existing.items() if v.get("status") != "failed"}
        todo = [s for s in samples if s["key"] not in existing]
        other_models = {line["teacher"].get("model") for line in existing.values() if line.get("teacher")}
        if other_models - {args.model}:
            print(f"warning: {args.output} already holds lines from {sorted(map(str, other_models))}", file=sys.stderr)
        result = asyncio.run(run(args, todo, journal, config))
    except (JournalError, FatalServerError) as exc:
        print(f"error: {scrub(str(exc), secrets)}", file=sys.stderr)
        return 2
    except ServerUnreachable as exc:
        print(
            f"error: {scrub(str(exc), secrets)}\nstopped; finished samples are saved, the unanswered ones are not "
            "written: run the same command again to resume",
            file=sys.stderr,
        )
        return 3
    except KeyboardInterrupt:
        print("interrupted: finished samples are saved; run the same command again to resume", file=sys.stderr)
        return 130
    except Exception:  # noqa: BLE001 - report it, scrubbed of the key, instead of a raw traceback
        print(scrub(traceback.format_exc(), secrets), file=sys.stderr)
        print("error: the run stopped; finished samples are saved; run the same command to resume", file=sys.stderr)
        return 2
    finally:
        journal.close()

    selected = {s["key"] for s in samples}
    in_file = [line for key, line in existing.items() if key in selected] + result["lines"]
    summary = {
        "output": str(args.output),
        "teacher": {"model": args.model, "base_url_host": base_url_host(args.base_url)},
        "prompt": args.prompt,
        "sampling": sampling | {"extra_body": extra_body},
        "reward": {"variant": args.reward_variant, "mode": args.reward_mode, "min_score": args.min_score},
        "selected": len(samples),
        "skipped_records": dict(skipped),
        "already_done": len(samples) - len(todo),
        "torn_bytes_truncated": journal.truncated_bytes,
        "this_run": {
            "attempted": len(result["lines"]),
            **tally(result["lines"]),
            "requests": result["requests"],
            "retries": result["retries"],
            "wall_s": round(time.monotonic() - started, 3),
        },
        "total": {"lines": len(in_file), **tally(in_file)},
        "finished_at": now(),
    }
    text = scrub(json.dumps(summary, indent=2, ensure_ascii=False), secrets)
    summary_path = Path(f"{args.output}.summary.json")
    summary_path.with_name(summary_path.name + ".tmp").write_text(text + "\n", encoding="utf-8")
    os.replace(summary_path.with_name(summary_path.name + ".tmp"), summary_path)
    print(text)
    return 0 if len(in_file) == len(samples) else 1


if __name__ == "__main__":
    sys.exit(main())
