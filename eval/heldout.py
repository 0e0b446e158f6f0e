"""Held-out evaluation with the training reward: generate on a verl parquet's prompts, score with ``compute_score``.

    python eval/heldout.py --data data/verl_heldout/test.parquet --base-url http://127.0.0.1:8011/v1 \\
        --model local --output outputs/heldout/sft [--limit 50] [--mode faithful] [--variant binary]

Reports the mean reward, the format rate (reasoning tags as the reward checks them), the parse rate (a well-formed
call list) and the exact-match rate (same multiset of calls as the ground truth), overall and per source id, as a
table and ``<output>/report.json``; each item's scores go to ``<output>/scores.jsonl`` (paired tests between models).
A request that gets no answer is not a wrong answer: rates are over the answered items, ``unanswered`` counts the
rest, unanswered items are requested again (``--rounds``), and the command exits with status 3 if any remain.
Generation goes through any OpenAI-compatible endpoint (``vllm serve`` on a GPU
host, ``eval/serve_hf.py`` on a CPU) with greedy decoding, the chat endpoint and the parquet's own chat messages,
so the model sees exactly the training prompt. Raw outputs are kept in ``<output>/raw.jsonl`` (a rerun resumes).

Replies are read by the reward itself, so the block policy is training's (``--mode faithful``: the last
``<tool_call>`` block; ``improved``: every block outside ``<think>``). Ground truths must be JSON call lists (the
data pipeline's format): a parquet whose ground truths cannot be read that way is refused, and a partly unreadable
one is scored with a warning and the count in the report (``unparsable_ground_truths``).
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import openai_generate

from tool_n1.cli import ArgumentParser
from tool_n1.parsing import load_json, well_formed
from tool_n1.reward import MODES, VARIANTS, compute_score

METRICS = {"score": "reward", "format_ok": "format", "call_parsed": "parsed", "calls_match": "exact match"}


def load_rows(path: Path, limit: int | None) -> list[dict[str, Any]]:
    """Rows of a verl parquet (or a JSONL of the same rows), first ``limit`` only; clear errors for bad input."""
    if not path.exists():
        raise SystemExit(f"error: {path} does not exist")
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        rows = pq.read_table(path).to_pylist()
    else:
        rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    missing = [k for k in ("prompt", "reward_model") if rows and k not in rows[0]]
    if missing:
        raise SystemExit(f"error: {path} is not in the verl row format (missing {', '.join(missing)})")
    return rows[:limit] if limit else rows


def row_id(row: dict[str, Any], position: int) -> str:
    info = row.get("extra_info") or {}
    return f"{info.get('split', 'row')}-{info.get('index', position)}"


def ground_truth_readable(ground_truth: Any) -> bool:
    """Whether a row's ground truth is a JSON call list (or a JSON string holding one), as the reward reads it."""
    value, error = load_json(ground_truth) if isinstance(ground_truth, str) else (ground_truth, "")
    if not error and isinstance(value, str):
        value, error = load_json(value)
    return not error and isinstance(value, list) and well_formed(value)


def check_ground_truths(rows: list[dict[str, Any]]) -> int:
    """Count rows whose ground truth cannot be read; refuse (``SystemExit``) when none can."""
    bad = sum(not ground_truth_readable((row.get("reward_model") or {}).get("ground_truth")) for row in rows)
    if rows and bad == len(rows):
        raise SystemExit(f"error: none of the {len(rows)} ground truths is a JSON call list (another format?)")
    if bad:
        print(f"warning: {bad} of {len(rows)} ground truths are not JSON call lists; those rows score 0", flush=True)
    return bad


def score_items(rows: list[dict[str, Any]], outputs: dict[str, str], **reward_kwargs: Any) -> list[dict[str, Any]]:
    """One record per row: ``id``, ``group``, ``answered`` and, for answered rows, the reward's metrics."""
    items = []
    for position, row in enumerate(rows):
        key = row_id(row, position)
        output = outputs.get(key)
        info = row.get("extra_info") or {}
        item: dict[str, Any] = {
            "id": key,
            "group": info.get("id") or row.get("data_source", "all"),
            "answered": output is not None,
        }
        if output is not None:
            result = compute_score(
                row.get("data_source", "toolcall"), output, row["reward_model"]["ground_truth"], info, **reward_kwargs
            )
            item.update({k: float(result[k]) for k in METRICS})
        items.append(item)
    return items


def summarise(items: list[dict[str, Any]]) -> dict[str, Any]:
    """Per group and ``all``: ``n`` rows, ``unanswered`` (also as ``missing``), ``answered`` and each metric's mean
    over the answered rows (0.0 when none was answered)."""
    totals: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for item in items:
        for name in ("all", item["group"]):
            totals[name]["n"] += 1
            if not item["answered"]:
                totals[name]["unanswered"] += 1
                continue
            for key in METRICS:
                totals[name][key] += item[key]
    report = {}
    for name, t in totals.items():
        answered = int(t["n"] - t["unanswered"])
        means = {k: t[k] / answered if answered else 0.0 for k in METRICS}
        unanswered = int(t["unanswered"])
        report[name] = {
            "n": int(t["n"]),
            "answered": answered,
            "unanswered": unanswered,
            "missing": unanswered,
            **means,
        }
    return report


def score_outputs(rows: list[dict[str, Any]], outputs: dict[str, str], **reward_kwargs: Any) -> dict[str, Any]:
    """Score each row's output; rows without output are counted as ``unanswered``, not scored."""
    return summarise(score_items(rows, outputs, **reward_kwargs))


def print_table(report: dict[str, Any]) -> None:
    labels = " | ".join(f"{label:>11}" for label in METRICS.values())
    print(f"| {'group':<24} | {'n':>4} | {'unanswered':>10} | {labels} |")
    print("|" + "|".join("-" * w for w in [26, 6, 12] + [13] * len(METRICS)) + "|")
    for name, row in sorted(report.items(), key=lambda kv: (kv[0] != "all", kv[0])):
        cells = " | ".join(f"{row[k]:>11.4f}" for k in METRICS)
        print(f"| {name:<24} | {row['n']:>4} | {row['unanswered']:>10} | {cells} |")


def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter, allow_abbrev=False
    )
    parser.add_argument("--data", type=Path, required=True, help="verl parquet (or JSONL) with prompt + reward_model")
    parser.add_argument("--output", type=Path, required=True, help="folder for raw.jsonl and report.json")
    parser.add_argument("--limit", type=int, default=None, help="only the first N rows (default: all)")
    parser.add_argument("--mode", choices=list(MODES), default="faithful", help="reward mode (default faithful)")
    parser.add_argument(
        "--variant", choices=VARIANTS, default=None, help="reward variant (default: each row's extra_info.prompt_type)"
    )
    parser.add_argument(
        "--predictions",
        type=Path,
        default=None,
        help="score this raw.jsonl ({id, output} lines) instead of generating",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=3,
        help="passes over unanswered items (each with --retries per request; default 3)",
    )
    openai_generate.add_cli_flags(parser)
    args = parser.parse_args(argv)

    rows = load_rows(args.data, args.limit)
    unreadable_truths = check_ground_truths(rows)
    args.output.mkdir(parents=True, exist_ok=True)
    if args.predictions:
        outputs = openai_generate.read_outputs(args.predictions)
    else:
        config = openai_generate.config_from_args(args)
        requests = [(row_id(row, i), list(row["prompt"])) for i, row in enumerate(rows)]
        outputs: dict[str, str] = {}
        for attempt in range(max(1, args.rounds)):
            if attempt:
                print(
                    f"round {attempt + 1}: requesting {len(requests) - len(outputs)} unanswered item(s) again",
                    flush=True,
                )
            outputs = openai_generate.generate(requests, config, args.output / "raw.jsonl")
            if len(outputs) >= len(requests):
                break
    items = score_items(rows, outputs, mode=args.mode, variant=args.variant)
    with open(args.output / "scores.jsonl", "w", encoding="utf-8") as handle:
        handle.writelines(json.dumps(item) + "\n" for item in items)
    report = summarise(items)
    if "all" in report:
        report["all"]["unparsable_ground_truths"] = unreadable_truths
    (args.output / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    print_table(report)
    unanswered = report["all"]["unanswered"] if report else 0
    if unanswered:
        print(
            f"error: {unanswered} of {len(rows)} item(s) got no answer after {args.rounds} round(s); "
            f"rerun to retry them ({args.output / 'raw.jsonl'} keeps the answered ones)",
            flush=True,
        )
        return 3
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
