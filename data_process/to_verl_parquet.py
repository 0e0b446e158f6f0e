"""Stage 2 of the data pipeline: unified JSONL -> verl ``train.parquet`` / ``test.parquet`` + ``parquet_report.json``.

Command line (either entry point; the second is the original project's path, a thin wrapper around this module):

    cd data_process && python to_verl_parquet.py --input ../data/unified/unified.jsonl --output-dir ../data/verl
    cd verl/examples/data_preprocess && python toolcall_preprocess.py \\
        --input ../../../data/unified/unified.jsonl --local_dir ../../../data/verl [--mode improved|faithful]

Seeded 90/10 split (``random.Random(seed).shuffle`` of the record positions: stable across runs and machines), one
chat prompt per record (system = preamble + tool template, then the context turns), the parquet schema of the
original's verl preprocessing. With ``--tokenizer`` (a local Hugging Face tokenizer folder) the prompts are measured
in tokens with the tokenizer's chat template and those longer than ``--max-prompt-length`` are dropped (as verl's
``filter_overlong_prompts`` would). Records are read by byte offset, so memory stays flat. Row groups are built by
one loop (``--engine datasets --workers N``: through ``datasets.Dataset.map``, the same bytes). A record that
cannot be built is counted (``records_rejected``, exit 1); a second run into the same output folder is refused.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO / "src") not in sys.path:  # the core package, when it is not pip-installed
    sys.path.insert(0, str(REPO / "src"))

from arrow_batches import BatchBuilder, TokenCounter, line_spans, parquet_schema  # noqa: E402
from record_selection import SelectionError, keep_sources, load_keys, positions_with_keys  # noqa: E402
from records import (  # noqa: E402
    MODES,
    OutputLocked,
    add_run_flags,
    engine_map,
    length_stats,
    locked_output_dir,
    log,
    progress,
)

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
BATCH_ROWS = 2048  # rows per parquet row group


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


def batch_tasks(split: str, positions: list[int]) -> list[tuple[str, int, list[int]]]:
    """``(split, first position in the split, record positions)`` per parquet row group of ``BATCH_ROWS`` rows."""
    return [(split, start, positions[start : start + BATCH_ROWS]) for start in range(0, len(positions), BATCH_ROWS)]


def _build_batches(tasks: list, builder: BatchBuilder) -> list[dict[str, Any]]:
    return [builder(task) for task in tasks]


def write_splits(splits, writers, opts, stats, builder) -> None:
    """Write the records of each ``(split, positions)`` (in that order) to ``writers[split]``, one row group per
    ``BATCH_ROWS`` records (built here, or by ``--workers`` processes of ``--engine datasets``)."""
    tasks = [task for split, positions in splits for task in batch_tasks(split, positions)]
    bar = progress(None, "parquet", opts.progress, total=sum(len(positions) for _, positions in splits))
    if opts.engine == "local":
        results = ((task, builder(task)) for task in tasks)
    else:
        block = 4 * opts.workers  # row groups in memory at a time
        results = engine_map(tasks, _build_batches, (builder,), opts.engine, opts.workers, batch_size=1, block=block)
    for (split, _, batch), result in results:
        for key, reason in result["rejected"].items():
            stats["rejected"][key] = reason
        stats["char_lengths"].extend(result["char_lengths"])
        stats["token_lengths"].extend(result["token_lengths"])
        stats["overlong_filtered"][split] += result["overlong"]
        stats["reference_rows"] += result["reference_rows"]
        table = result["table"]
        if table is not None and table.num_rows:
            writers[split].write_table(table)
            stats["rows"][split] += table.num_rows
        if bar is not None:
            bar.update(len(batch))
    if bar is not None:
        bar.close()


def select_and_split(source: Path, spans, args) -> tuple[list[int], list[int], int, dict[str, Any]]:
    """The train and test positions (after ``--keys`` and ``--train-sources``), the split's dropped count and what
    the selection did (for the report). Raises :class:`SelectionError` when nothing is left to write."""
    selection: dict[str, Any] = {}
    positions = None
    if args.keys:
        wanted = load_keys(args.keys, args.keys_subset)
        positions, missing = positions_with_keys(source, spans, wanted)
        selection.update(keys_file=args.keys, keys_subset=args.keys_subset, keys_wanted=len(wanted))
        selection.update(records_selected=len(positions), keys_not_found=len(missing), examples_not_found=missing[:5])
        if not positions:
            raise SelectionError(f"no record of {source} has a key listed in {args.keys} (another unified file?)")
        if missing:
            log.warning("%d of %d keys are not in %s (e.g. %s)", len(missing), len(wanted), source, missing[0])
    count = len(spans[0]) if positions is None else len(positions)
    train, test, dropped = split_positions(count, args.seed, args.train_ratio, args.split_remainder)
    if positions is not None:
        train, test = [positions[k] for k in train], [positions[k] for k in test]
    if args.train_sources:
        train, left_out = keep_sources(source, spans, train, args.train_sources)
        selection.update(train_sources=args.train_sources, train_left_out_by_source=left_out)
        if not train:
            raise SelectionError(f"no training record of {source} comes from {args.train_sources}")
    return train, test, dropped, selection


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="Unified JSONL (from data_process.py) -> verl train.parquet / test.parquet + "
        "parquet_report.json (stage 2 of the Tool-N1 data pipeline).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        allow_abbrev=False,
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
    for flag, kind, text in (
        (
            "--previous-calls",
            ("json-string", "tool-call-block"),
            "earlier call turns in the prompt: double-encoded JSON string (original) or <tool_call>[...]</tool_call>",
        ),
        (
            "--dedupe-tool-intro",
            None,
            "drop the preamble's 'Here is a list of functions…' sentence the template repeats",
        ),
        (
            "--index",
            ("per-split", "global"),
            "extra_info.index: position in its split (original, restarts at 0) or "
            "the record's position in unified.jsonl (unique across splits)",
        ),
        ("--split-remainder", ("drop", "test"), "records beyond int(0.9N)+int(0.1N): dropped (original) or in test"),
        ("--provenance", None, "add extra_info.id (sample id) and extra_info.origin (input file, row and turn)"),
    ):
        action = {"choices": kind} if kind else {"action": argparse.BooleanOptionalAction}
        fixes.add_argument(flag, default=None, help=text, **action)
    parser.add_argument(
        "--train-ratio",
        type=float,
        default=0.9,
        help="share of records in train (0: all in test.parquet, a held-out set)",
    )
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
    selection = parser.add_argument_group("record selection, for the data ablations (default: every record)")
    selection.add_argument(
        "--keys",
        metavar="FILE",
        help="only records with these distillation keys: a JSON list, or tool_sft_manifest.json of "
        "LLaMA-Factory/data_process.py with --keys-subset",
    )
    selection.add_argument(
        "--keys-subset",
        metavar="NAME",
        help="with an SFT manifest: tool_sft_reason_100 (the distilled subset, Table 3 RL 100%%) or rl_rest_50 "
        "(the half not used for SFT)",
    )
    selection.add_argument(
        "--train-sources",
        nargs="+",
        choices=("toolace", "xlam"),
        help="train.parquet keeps only records of these sources; test.parquet stays whole (Table 5)",
    )
    add_run_flags(parser, "row group")
    return parser


def write_parquet(source: Path, spans, train, test, output_dir: Path, args, counter) -> dict[str, Any]:
    """Both parquet files (``*.partial`` until complete) and the statistics of their rows."""
    stats: dict[str, Any] = {
        "rows": {"train": 0, "test": 0},
        "overlong_filtered": {"train": 0, "test": 0},
        "rejected": {},
        "char_lengths": [],
        "token_lengths": [],
        "reference_rows": 0,
    }
    builder = BatchBuilder(source, spans, args, counter)
    import pyarrow.parquet as pq

    schema = parquet_schema(args.provenance)
    partial = {split: output_dir / f"{split}.parquet.partial" for split in ("train", "test")}  # renamed when done
    try:
        with (
            pq.ParquetWriter(partial["train"], schema) as train_writer,
            pq.ParquetWriter(partial["test"], schema) as test_writer,
        ):
            writers = {"train": train_writer, "test": test_writer}
            write_splits((("train", train), ("test", test)), writers, args, stats, builder)
    finally:
        builder.close()
    for split, path in partial.items():
        os.replace(path, output_dir / f"{split}.parquet")
    return stats


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
    if args.keys_subset and not args.keys:
        log.error("--keys-subset needs --keys")
        return 2
    if not 0.0 <= args.train_ratio <= 1.0:
        log.error("--train-ratio must be between 0 and 1 (0: everything in test.parquet, e.g. a held-out set)")
        return 2
    counter = None
    if args.tokenizer:
        try:
            counter = TokenCounter(args.tokenizer)
        except Exception as exc:  # transformers raises OSError/ValueError/ImportError variants
            log.error("cannot load the tokenizer at %s: %s", args.tokenizer, exc)
            return 1
    started = time.perf_counter()
    spans = line_spans(source)
    offsets = spans[0]
    if not offsets:
        log.error("%s is empty: no records to split", source)
        return 1
    try:
        train, test, dropped, selection = select_and_split(source, spans, args)
    except SelectionError as exc:
        log.error("%s", exc)
        return 1
    output_dir = Path(args.output_dir)
    try:
        with locked_output_dir(output_dir, ("train.parquet", "test.parquet")):
            stats = write_parquet(source, spans, train, test, output_dir, args, counter)
            return write_report(
                output_dir, source, len(offsets), (train, test, dropped, selection), stats, args, started
            )
    except OutputLocked as exc:
        log.error("%s", exc)
        return 1


def write_report(output_dir: Path, source: Path, records: int, split, stats, args, started: float) -> int:
    """``parquet_report.json`` and the summary on the console; returns the exit status."""
    train, test, dropped, selection = split
    counter = args.tokenizer
    log.debug("%d of %d records took the reference path", stats["reference_rows"], records)
    report = {
        "stage": "unified -> verl parquet",
        "input": str(source),
        "records_read": records,
        "split": {"train": len(train), "test": len(test), "dropped_by_split": dropped, "seed": args.seed},
        "selection": selection or None,
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
