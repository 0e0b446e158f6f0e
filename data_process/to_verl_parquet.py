"""Stage 2 of the data pipeline: unified JSONL -> verl ``train.parquet`` / ``test.parquet`` + ``parquet_report.json``.

Command line (either entry point; the second is the seed's path, a thin wrapper around this module):

    cd data_process && python to_verl_parquet.py --input ../data/unified/unified.jsonl --output-dir ../data/verl
    cd verl/examples/data_preprocess && python toolcall_preprocess.py \\
        --input ../../../data/unified/unified.jsonl --local_dir ../../../data/verl [--mode improved|faithful]

Seeded 90/10 split (``random.Random(seed).shuffle`` of the record positions: stable across runs and machines), one
chat prompt per record (system = preamble + tool template, then the context turns), the parquet schema of the
original (``original_behaviour.md`` §2.4). With ``--tokenizer`` (a local Hugging Face tokenizer folder) the prompts
are measured in tokens with the tokenizer's chat template and those longer than ``--max-prompt-length`` are dropped
(as verl's ``filter_overlong_prompts`` would). Records are read by byte offset, so memory stays flat.
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO / "src") not in sys.path:  # the core package, when it is not pip-installed
    sys.path.insert(0, str(REPO / "src"))

from records import MODES, length_stats, log  # noqa: E402

from tool_n1.prompts import training_system_prompt  # noqa: E402

PRESETS = {
    "faithful": {
        "previous_calls": "json-string",
        "dedupe_tool_intro": False,
        "index": "per-split",
        "split_remainder": "drop",
        "provenance": False,
    },
    "improved": {
        "previous_calls": "tool-call-block",
        "dedupe_tool_intro": True,
        "index": "global",
        "split_remainder": "test",
        "provenance": True,
    },
}
CHAT_ROLES = {"human": "user", "gpt": "assistant", "observation": "tool", "function_call": "assistant"}
BATCH_ROWS = 1024


def previous_call_text(value: str, style: str) -> str:
    """How an earlier call turn appears in the prompt.

    ``json-string`` (original): ``json.dumps`` of the value, which is already a JSON string, so the call list appears
    double-encoded. ``tool-call-block``: ``<tool_call>[...]</tool_call>``, the format the model must produce, without
    a ``<think>`` part (earlier reasoning is not shown, as in Qwen's own multi-turn templates).
    """
    if style == "json-string":
        return json.dumps(value)
    try:
        return f"<tool_call>{json.dumps(json.loads(value))}</tool_call>"
    except json.JSONDecodeError:
        return value


def build_prompt(record: dict[str, Any], previous_calls: str, dedupe_tool_intro: bool) -> list[dict[str, str]]:
    """System message + context turns; unknown speakers are dropped, as the original did."""
    system = training_system_prompt(record["tools"], record["raw_system"], dedupe=dedupe_tool_intro)
    prompt = [{"role": "system", "content": system}]
    for turn in record["conversations"]:
        role = CHAT_ROLES.get(turn["from"])
        if role is None:
            continue
        content = turn["value"]
        if turn["from"] == "function_call":
            content = previous_call_text(content, previous_calls)
        prompt.append({"role": role, "content": content})
    return prompt


def split_positions(count: int, seed: int, train_ratio: float, remainder: str) -> tuple[list[int], list[int], int]:
    """Seeded shuffle of ``range(count)`` -> (train positions, test positions, dropped count).

    Train = first ``int(train_ratio * N)``; test = next ``int((1 - train_ratio) * N)`` (``remainder="drop"``, the
    original, which loses a record when the two do not add up) or all the rest (``remainder="test"``).
    """
    order = list(range(count))
    random.Random(seed).shuffle(order)
    n_train = int(count * train_ratio)
    if remainder == "drop":
        n_test = int(count * round(1.0 - train_ratio, 12))
    else:
        n_test = count - n_train
    return order[:n_train], order[n_train : n_train + n_test], count - n_train - n_test


def parquet_schema(provenance: bool):
    import pyarrow as pa

    extra = [("split", pa.string()), ("index", pa.int64()), ("prompt_type", pa.string())]
    if provenance:
        extra += [("id", pa.string()), ("origin", pa.string())]
    message = lambda a, b: pa.list_(pa.struct([(a, pa.string()), (b, pa.string())]))  # noqa: E731
    return pa.schema(
        [
            ("tools", pa.string()),
            ("conversations", message("from", "value")),
            ("answer", pa.string()),
            ("raw_system", pa.string()),
            ("data_source", pa.string()),
            ("prompt", message("role", "content")),
            ("ability", pa.string()),
            ("reward_model", pa.struct([("style", pa.string()), ("ground_truth", pa.string())])),
            ("extra_info", pa.struct(extra)),
        ]
    )


def line_offsets(path: Path) -> list[int]:
    offsets, position = [], 0
    with open(path, "rb") as handle:
        for line in handle:
            if line.strip():
                offsets.append(position)
            position += len(line)
    return offsets


class TokenCounter:
    """Prompt length in tokens with a local tokenizer's chat template (generation prompt added, like verl)."""

    def __init__(self, path: str):
        from transformers import AutoTokenizer

        self.tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)

    def lengths(self, prompts: list[list[dict[str, str]]]) -> list[int]:
        texts = [self.tokenizer.apply_chat_template(p, add_generation_prompt=True, tokenize=False) for p in prompts]
        return [len(ids) for ids in self.tokenizer(texts, add_special_tokens=False)["input_ids"]]


def write_split(split, positions, handle, offsets, writer, opts, counter, stats) -> None:
    """Write the records at ``positions`` (in that order) as rows of one split, in batches."""
    batch: list[dict[str, Any]] = []

    def flush():
        if counter is not None:
            lengths = counter.lengths([row["prompt"] for row in batch])
            stats["token_lengths"].extend(lengths)
            kept = [row for row, n in zip(batch, lengths, strict=True) if n <= opts.max_prompt_length]
            stats["overlong_filtered"][split] += len(batch) - len(kept)
        else:
            kept = batch
        if kept:
            import pyarrow as pa

            writer.write_table(pa.Table.from_pylist(kept, schema=writer.schema))
        stats["rows"][split] += len(kept)
        batch.clear()

    for split_index, position in enumerate(_progress(positions, split, opts.progress)):
        handle.seek(offsets[position])
        line = handle.readline()
        try:
            record = json.loads(line)
            prompt = build_prompt(record, opts.previous_calls, opts.dedupe_tool_intro)
            answer = json.dumps(record["answer"])
            row = {
                "tools": json.dumps(record["tools"]),
                "conversations": [{"from": t["from"], "value": t["value"]} for t in record["conversations"]],
                "answer": answer,
                "raw_system": record["raw_system"],
                "data_source": opts.data_source,
                "prompt": prompt,
                "ability": "toolcall",
                "reward_model": {"style": "rule", "ground_truth": answer},
                "extra_info": {
                    "split": split,
                    "index": position if opts.index == "global" else split_index,
                    "prompt_type": opts.prompt_type,
                },
            }
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            stats["rejected"][f"record line {position + 1}"] = f"{type(exc).__name__}: {exc}"[:300]
            continue
        if opts.provenance:
            row["extra_info"]["id"] = str(record.get("id", ""))
            row["extra_info"]["origin"] = str(record.get("origin", ""))
        stats["char_lengths"].append(sum(len(m["content"]) for m in prompt))
        batch.append(row)
        if len(batch) >= BATCH_ROWS:
            flush()
    flush()


def _progress(iterable, description: str, enabled: bool):
    if not enabled:
        return iterable
    try:
        from tqdm import tqdm
    except ImportError:
        return iterable
    return tqdm(iterable, desc=description, unit=" rows", mininterval=0.5, file=sys.stderr)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="Unified JSONL (from data_process.py) -> verl train.parquet / test.parquet + "
        "parquet_report.json (stage 2 of the Tool-N1 data pipeline).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--input",
        default=str(REPO / "data" / "unified" / "unified.jsonl"),
        help="unified.jsonl written by data_process.py",
    )
    parser.add_argument(
        "--output-dir",
        "--local_dir",
        dest="output_dir",
        default=str(REPO / "data" / "verl"),
        help="folder for train.parquet, test.parquet and parquet_report.json",
    )
    parser.add_argument(
        "--mode",
        choices=MODES,
        default="improved",
        help="'faithful' = the original's prompt and split; 'improved' sets the flags below",
    )
    fixes = parser.add_argument_group("improvements (default: set by --mode; give a flag to override)")
    fixes.add_argument(
        "--previous-calls",
        choices=("json-string", "tool-call-block"),
        default=None,
        help="earlier call turns in the prompt: double-encoded JSON string (original) or <tool_call>[...]</tool_call>",
    )
    fixes.add_argument(
        "--dedupe-tool-intro",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="drop the preamble's 'Here is a list of functions…' sentence that the template repeats",
    )
    fixes.add_argument(
        "--index",
        choices=("per-split", "global"),
        default=None,
        help="extra_info.index: position in its split (original, restarts at 0) or the record's "
        "position in unified.jsonl (unique across splits)",
    )
    fixes.add_argument(
        "--split-remainder",
        choices=("drop", "test"),
        default=None,
        help="records beyond int(0.9N)+int(0.1N): dropped (original) or added to test",
    )
    fixes.add_argument(
        "--provenance",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="add extra_info.id (sample id) and extra_info.origin (input file, row and turn)",
    )
    parser.add_argument("--train-ratio", type=float, default=0.9, help="share of records in train")
    parser.add_argument("--seed", type=int, default=42, help="seed of the split shuffle")
    parser.add_argument(
        "--prompt-type",
        default="qwen",
        help="extra_info.prompt_type: selects the reward variant (qwen = binary, llama, ...)",
    )
    parser.add_argument("--data-source", default="toolcall", help="data_source column (the reward's first argument)")
    parser.add_argument(
        "--tokenizer",
        default=None,
        metavar="PATH",
        help="local Hugging Face tokenizer folder: prompt lengths in tokens + overlong filtering",
    )
    parser.add_argument(
        "--max-prompt-length",
        type=int,
        default=4096,
        help="with --tokenizer: drop prompts longer than this many tokens (verl's filter)",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.add_argument(
        "--log-level", default="INFO", choices=("DEBUG", "INFO", "WARNING", "ERROR"), help="console log level"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=args.log_level, format="%(levelname)s %(message)s", force=True)
    for key, value in PRESETS[args.mode].items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    args.progress = not args.no_progress
    source = Path(args.input)
    if not source.is_file():
        log.error("input not found: %s (run data_process.py first)", source)
        return 1
    if not 0.0 < args.train_ratio < 1.0:
        log.error("--train-ratio must be between 0 and 1")
        return 2
    counter = None
    if args.tokenizer:
        try:
            counter = TokenCounter(args.tokenizer)
        except Exception as exc:  # transformers raises OSError/ValueError/ImportError variants
            log.error("cannot load the tokenizer at %s: %s", args.tokenizer, exc)
            return 1
    started = time.perf_counter()
    offsets = line_offsets(source)
    if not offsets:
        log.error("%s is empty: no records to split", source)
        return 1
    train, test, dropped = split_positions(len(offsets), args.seed, args.train_ratio, args.split_remainder)
    output_dir = Path(args.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    stats: dict[str, Any] = {
        "rows": {"train": 0, "test": 0},
        "overlong_filtered": {"train": 0, "test": 0},
        "rejected": {},
        "char_lengths": [],
        "token_lengths": [],
    }
    import pyarrow.parquet as pq

    schema = parquet_schema(args.provenance)
    with open(source, "rb") as handle:
        for split, positions in (("train", train), ("test", test)):
            with pq.ParquetWriter(output_dir / f"{split}.parquet", schema) as writer:
                write_split(split, positions, handle, offsets, writer, args, counter, stats)
    report = {
        "stage": "unified -> verl parquet",
        "input": str(source),
        "records_read": len(offsets),
        "split": {"train": len(train), "test": len(test), "dropped_by_split": dropped, "seed": args.seed},
        "rows_written": stats["rows"],
        "records_rejected": stats["rejected"],
        "overlong_filtered": stats["overlong_filtered"] if counter else None,
        "prompt_chars": length_stats(stats["char_lengths"]),
        "prompt_tokens": length_stats(stats["token_lengths"]) if counter else None,
        "tokenizer": args.tokenizer,
        "max_prompt_length": args.max_prompt_length,
        "options": {key: getattr(args, key) for key in (*PRESETS["improved"], "mode", "prompt_type", "train_ratio")},
        "seconds": round(time.perf_counter() - started, 2),
    }
    (output_dir / "parquet_report.json").write_text(json.dumps(report, indent=2) + "\n")
    if dropped:
        log.info("the original's 90/10 split drops %d record(s) (counted in parquet_report.json)", dropped)
    for position, reason in list(stats["rejected"].items())[:5]:
        log.error("unusable record (%s): %s", position, reason)
    if not counter:
        log.info("no --tokenizer: prompt lengths in characters only, no overlong filtering")
    log.info("wrote %d train / %d test rows to %s", stats["rows"]["train"], stats["rows"]["test"], output_dir)
    return 1 if stats["rejected"] else 0


if __name__ == "__main__":
    sys.exit(main())
