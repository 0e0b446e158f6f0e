"""Stage 1 of the data pipeline: raw ToolACE + xLAM rows -> unified JSONL records + an accounting report.

Command line (from the repository root):

    cd data_process && python data_process.py --toolace /data/ToolACE/data.json \\
        --xlam /data/xlam_function_calling_60k.json --output-dir ../data/unified [--mode improved|faithful]

Writes ``<output-dir>/unified.jsonl`` (one sample per line), ``report.json`` (counts, rejections by reason, per-source
and per-group counts, warnings) and ``rejections.jsonl`` (one line per rejected input/row/call turn with its
position), and prints the comparison with the paper's Table 1. Next stage: ``to_verl_parquet.py`` (or the wrapper
``verl/examples/data_preprocess/toolcall_preprocess.py``). Flags and the faithful/improved table: README.md here.

Rows are processed by one loop over the pure function :func:`row_outcome` (``--engine datasets --workers N``: the
same function through ``datasets.Dataset.map``; the output is the same). No row can end the run: every row is
written or counted with a reason.

Exit status: 0 on success; 1 if an input could not be read at all, no sample was written or another run is writing
into the output folder; 2 on a usage error or, with ``--strict``, on the first rejection.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import re
import sys
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO / "src") not in sys.path:  # the core package, when it is not pip-installed
    sys.path.insert(0, str(REPO / "src"))

import augmentation  # noqa: E402
import toolace  # noqa: E402
import xlam  # noqa: E402
from raw_inputs import InputError, decode_error, iter_raw_rows  # noqa: E402
from records import (  # noqa: E402
    CHECKS,
    MAX_NESTING,
    MODES,
    OutputLocked,
    RawOptions,
    RecordEncoder,
    Report,
    RowRejected,
    StrictModeError,
    add_run_flags,
    engine_map,
    locked_output_dir,
    log,
    progress,
    too_deep,
)

PAPER_TABLE_1 = {"toolace/single": (10500, 8183), "toolace/multi": (800, 1470), "xlam/xlam": (60000, 60000)}
LOW_YIELD = 0.01
PARTIAL = ".partial"  # output files while they are written
_LONE_SURROGATE = re.compile(r"\\ud[89ab]..(?!\\ud[c-f])|(?<!\\ud[89ab]..)\\ud[c-f]..")


def row_outcome(source: str, group: str | None, row: dict, options: RawOptions) -> dict:
    """One decoded raw row -> ``{"group", "samples": [(turn, record, is_call_turn)], "call_turns", "rejected":
    [(turn, reason, detail)]}``, or ``{"row_rejected": (reason, detail)}``. A pure function: no row can raise."""
    try:
        if source == "toolace":
            return toolace.process_dialog(row, options, group)
        return {"group": "xlam", "samples": [(None, xlam.process_row(row, options), True)], "call_turns": 1}
    except RowRejected as exc:
        return {"row_rejected": (exc.code, exc.detail)}
    except (RecursionError, ValueError, TypeError, KeyError, AttributeError, IndexError) as exc:
        code, detail = decode_error(exc)
        if code == "malformed_json":  # not a decoder's error: an input no rule above foresaw
            code, detail = "row_unprocessable", f"{type(exc).__name__}: {exc}"
        return {"row_rejected": (code, detail[:300])}


def _outcomes(job: tuple, options: RawOptions):
    """Raw rows of one input and their outcomes, in order; raw rows that could not be decoded pass through."""
    source, spec, group = job
    for raw in iter_raw_rows(spec):
        yield raw, None if raw.error else row_outcome(source, group, raw.row, options)


def _outcome_batch(raws: list, source: str, group: str | None, options: RawOptions) -> list:
    return [None if raw.error else row_outcome(source, group, raw.row, options) for raw in raws]


class Stage1:
    """Writes the outcomes of every input into ``unified.jsonl`` (in input order), counting everything."""

    def __init__(self, options: RawOptions, report: Report, output, show_progress: bool):
        self.options, self.report, self.output, self.show_progress = options, report, output, show_progress
        self.augment_rng = random.Random(f"{options.seed}:augment")
        self.unreadable_inputs = 0
        self.encoder = RecordEncoder()

    def run_input(self, job: tuple, engine: str = "local", workers: int = 1) -> None:
        source, spec, group = job
        counts = self.report.source(source)
        entry = {"input": spec, "group": group, "rows": 0, "error": None}
        counts.inputs.append(entry)
        log.info("reading %s input %s%s", source, spec, f" (all dialogs {group}-turn)" if group else "")
        if engine == "local":
            pairs = _outcomes(job, self.options)
        else:
            pairs = engine_map(iter_raw_rows(spec), _outcome_batch, (source, group, self.options), engine, workers)
        try:
            for raw, outcome in progress(pairs, f"{source} {Path(spec).name}", self.show_progress):
                entry["rows"] += 1
                counts.rows_read += 1
                if raw.error:
                    self.report.reject(source, "row", raw.error, raw.detail, raw.position)
                else:
                    self.take(source, outcome, raw.position)
        except InputError as exc:
            entry["error"] = str(exc)
            self.unreadable_inputs += 1
            log.error("%s", exc)
            self.report.reject(source, "input", "input_unreadable", str(exc), spec)

    def take(self, source: str, outcome: dict, position: str) -> None:
        """Count one row's outcome and write its samples."""
        if "row_rejected" in outcome:
            self.report.reject(source, "row", *outcome["row_rejected"], position)
            return
        counts = self.report.source(source)
        counts.rows_used += 1
        counts.call_turns += outcome["call_turns"]
        group_counts = counts.groups.get(outcome["group"])
        if group_counts is None:
            group_counts = counts.groups[outcome["group"]] = _new_group()
        group_counts["dialogs"] += 1
        for turn, code, detail in outcome.get("rejected", ()):
            self.report.reject(source, "call_turn", code, detail, f"{position}/turn {turn}")
        for turn, record, is_call in outcome["samples"]:
            origin = position if turn is None else f"{position}/turn {turn}"
            unit = "call_turn" if is_call else "sample"
            if not (self.augment(record, origin) if source == "xlam" else self.write(record, source, origin, unit)):
                continue
            if is_call:
                counts.samples_kept += 1
                group_counts["samples"] += 1
            else:
                counts.nocall_samples += 1

    def write(self, record: dict, source: str, origin: str, unit: str) -> bool:
        """Write one record; ``False`` (counted as a rejection of ``unit``) when the next stage could not read it."""
        record["source"] = source
        record["origin"] = origin
        try:
            line = self.encoder.encode(record)
            if self.encoder.suspect and too_deep(record, MAX_NESTING):
                raise RecursionError
        except (RecursionError, ValueError, TypeError) as exc:
            detail = f"nested deeper than {MAX_NESTING} levels" if isinstance(exc, RecursionError) else str(exc)
            code = "too_deeply_nested" if isinstance(exc, RecursionError) else "record_unwritable"
            self.report.reject(source, unit, code, detail, origin)
            return False
        if "\\ud" in line and _LONE_SURROGATE.search(line):
            detail = "a string holds a lone surrogate (\\ud800-\\udfff), which no parquet string can store"
            self.report.reject(source, unit, "lone_surrogate", detail, origin)
            return False
        self.output.write(line + "\n")
        self.report.source(source).ids[record["id"]] += 1
        return True

    def augment(self, record: dict, origin: str) -> bool:
        """Write an xLAM sample, masked with probability ``--mask-rate``, and maybe an irrelevance copy."""
        counts = self.report.source("xlam")
        masked = augmentation.mask_names(record, self.augment_rng, self.options.mask_rate)
        written = self.write(masked or record, "xlam", origin, "call_turn")
        if written and masked is not None:
            counts.masked_samples += 1
        extra = augmentation.irrelevance_sample(record, self.augment_rng, self.options.irrelevance_rate)
        if extra is not None and self.write(extra, "xlam", origin + "/irrelevance", "sample"):
            counts.augmented_samples["irrelevance"] += 1
        return written


def run_jobs(jobs, options, output_dir: Path, show_progress=False, strict=False, engine="local", workers=1):
    """Run ``(source, input, group)`` jobs in order into ``unified.partial.jsonl`` / ``rejections.partial.jsonl`` of
    ``output_dir``; returns the report and the number of unreadable inputs."""
    report = Report(output_dir / f"rejections{PARTIAL}.jsonl", strict=strict)
    try:
        with open(output_dir / f"unified{PARTIAL}.jsonl", "w", encoding="utf-8", buffering=1 << 20) as output:
            stage = Stage1(options, report, output, show_progress)
            for job in jobs:
                stage.run_input(job, engine, workers)
    finally:
        report.close()
    return report, stage.unreadable_inputs


def _new_group() -> Counter:
    return Counter(dialogs=0, samples=0)


def table_1(report: Report) -> str:
    """The comparison with the paper's Table 1 (raw rows -> call samples per source and ToolACE group)."""
    lines = [
        "Table 1 comparison (paper: Tool-N1 Table 1; 'here': this run)",
        f"{'data':<16}{'raw (paper)':>12}{'raw (here)':>12}{'samples (paper)':>17}{'samples (here)':>16}",
    ]
    for key, (paper_raw, paper_samples) in PAPER_TABLE_1.items():
        source, group = key.split("/")
        counts = report.sources.get(source)
        group_counts = counts.groups.get(group) if counts else None
        raw = group_counts["dialogs"] if group_counts else 0
        samples = group_counts["samples"] if group_counts else 0
        label = f"{'ToolACE' if source == 'toolace' else 'xLAM'} {group if source == 'toolace' else ''}".strip()
        lines.append(f"{label:<16}{paper_raw:>12}{raw:>12}{paper_samples:>17}{samples:>16}")
    lines.append("('raw' counts usable dialogs/rows; rejected rows are in report.json)")
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="Raw ToolACE + xLAM -> unified JSONL records + report.json (stage 1 of the Tool-N1 data "
        "pipeline). Inputs: JSON list, JSON lines, parquet, a datasets save_to_disk folder, or a hub name "
        "'owner/name[:split]' (needs network).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        allow_abbrev=False,
    )
    inputs = parser.add_argument_group("inputs (each flag may be repeated / take several paths)")
    for flag, text in (
        (
            "--toolace",
            "ToolACE dialogs (hub roles user/assistant/tool or human/gpt/observation/function_call; a "
            "ShareGPT file with a 'tools' field); a dialog is multi-turn iff it has >= 2 user turns",
        ),
        ("--toolace-single", "ToolACE dialogs already split by you: all counted as single-turn (the original layout)"),
        ("--toolace-multi", "ToolACE dialogs already split by you: all counted as multi-turn"),
        ("--xlam", "xLAM rows (id, query, answers, tools), e.g. Salesforce/xlam-function-calling-60k"),
    ):
        inputs.add_argument(flag, nargs="+", action="extend", default=[], metavar="PATH", help=text)
    parser.add_argument(
        "--output-dir",
        "--output_dir",
        default=str(REPO / "data" / "unified"),
        help="folder for unified.jsonl, report.json and rejections.jsonl",
    )
    parser.add_argument(
        "--mode",
        choices=MODES,
        default="improved",
        help="'faithful' reproduces the original exactly; 'improved' sets the improvement flags below",
    )
    fixes = parser.add_argument_group("improvements (default: set by --mode; give a flag to override)")
    fixes.add_argument(
        "--call-parser",
        choices=("faithful", "robust"),
        default=None,
        help="ToolACE call strings: original regex semantics (values cut at the first ')', JSON "
        "literals as strings) or the robust parser (rejects what it cannot parse, with a reason)",
    )
    fixes.add_argument(
        "--tool-extraction",
        choices=("faithful", "robust"),
        default=None,
        help="ToolACE tool list: the original's 'drop last 2 chars + ]' rule, or JSON-decode in place",
    )
    fixes.add_argument(
        "--normalize-tools",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="rewrite every tool schema to {name, description, parameters: {type: object, ...}}",
    )
    extra = parser.add_argument_group("optional samples (all off by default, as in the paper)")
    extra.add_argument(
        "--include-nocall",
        action="store_true",
        help="also make a sample with answer [] from every plain-text ToolACE assistant turn",
    )
    extra.add_argument(
        "--irrelevance-rate",
        type=float,
        default=0.0,
        help="per xLAM sample, probability of an extra no-call copy without its answer tools "
        "(the original's unused helper used 0.15)",
    )
    extra.add_argument(
        "--mask-rate",
        type=float,
        default=0.0,
        help="per xLAM sample, probability of Hammer-style random function/parameter names",
    )
    parser.add_argument("--seed", type=int, default=42, help="seed for the augmentation draws")
    parser.add_argument("--strict", action="store_true", help="stop (exit 2) at the first rejected input/row/turn")
    checks = parser.add_argument_group("label-noise checks (improved mode: on; each rejection is counted by reason)")
    for flag, text in (
        (
            "--check-argument-types",
            "an argument's JSON type differs from its parameter's type (argument_type_mismatch)",
        ),
        ("--check-required", "a parameter the schema requires has no argument (required_argument_missing)"),
        (
            "--check-tool-results",
            "ToolACE: the next turn holds results of other tools than the ones called "
            "(calls_disagree_with_tool_results)",
        ),
    ):
        checks.add_argument(
            flag, action=argparse.BooleanOptionalAction, default=None, help=f"reject a call where {text}"
        )
    parser.add_argument(
        "--max-context-chars",
        type=int,
        default=100_000,
        help="a ToolACE call turn whose context (earlier turns) holds more characters is rejected "
        "(context_too_long; far beyond any trainable prompt); 0: no limit",
    )
    add_run_flags(parser, "row")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=args.log_level, format="%(levelname)s %(message)s", force=True)
    if not (args.toolace or args.toolace_single or args.toolace_multi or args.xlam):
        log.error("no input given: pass --toolace and/or --xlam (see --help)")
        return 2
    for name in ("irrelevance_rate", "mask_rate"):
        if not 0.0 <= getattr(args, name) <= 1.0:
            log.error("--%s must be between 0 and 1", name.replace("_", "-"))
            return 2
    options = RawOptions.for_mode(
        args.mode,
        call_parser=args.call_parser,
        tool_extraction=args.tool_extraction,
        normalize_tools=args.normalize_tools,
        include_nocall=args.include_nocall,
        irrelevance_rate=args.irrelevance_rate,
        mask_rate=args.mask_rate,
        seed=args.seed,
        max_context_chars=args.max_context_chars,
        **{name: getattr(args, name) for name in CHECKS},
    )
    try:
        with locked_output_dir(Path(args.output_dir), ("unified", "rejections")):
            return run(args, options, Path(args.output_dir))
    except OutputLocked as exc:
        log.error("%s", exc)
        return 1


def run(args: argparse.Namespace, options: RawOptions, output_dir: Path) -> int:
    """Stage 1 into ``output_dir`` (locked by the caller); returns the exit status."""
    started = time.perf_counter()
    jobs = [("toolace", spec, None) for spec in args.toolace]
    jobs += [("toolace", spec, "single") for spec in args.toolace_single]
    jobs += [("toolace", spec, "multi") for spec in args.toolace_multi]
    jobs += [("xlam", spec, None) for spec in args.xlam]
    try:  # written as *.partial.jsonl and renamed when complete: a killed run never leaves a short unified.jsonl
        report, unreadable = run_jobs(
            jobs, options, output_dir, not args.no_progress, args.strict, args.engine, args.workers
        )
    except StrictModeError as exc:
        log.error("--strict: stopping at the first rejection: %s", exc)
        return 2
    report.close()
    for name in ("unified", "rejections"):
        os.replace(output_dir / f"{name}{PARTIAL}.jsonl", output_dir / f"{name}.jsonl")
    report.rejections_path = output_dir / "rejections.jsonl"
    for name, counts in report.sources.items():
        if counts.rows_read and counts.samples_kept < LOW_YIELD * counts.rows_read:
            report.warn(
                f"SOURCE {name!r} YIELDED ONLY {counts.samples_kept} SAMPLES FROM {counts.rows_read} ROWS (< 1 %): "
                f"check its format (rejections by reason: {dict(counts.rows_rejected + counts.call_turns_rejected)})"
            )
        elif not counts.rows_read:
            report.warn(f"SOURCE {name!r}: NO ROWS READ")
    summary = report.to_dict(
        stage="raw -> unified",
        options=vars(options),
        outputs={"unified": str(output_dir / "unified.jsonl")},
        seconds=round(time.perf_counter() - started, 2),
    )
    (output_dir / "report.json").write_text(json.dumps(summary, indent=2, ensure_ascii=False) + "\n")
    for error in summary["invariant_errors"]:
        log.error("accounting invariant broken: %s", error)
    print(table_1(report))
    log.info(
        "wrote %d samples to %s (report: %s)",
        summary["samples_written"],
        output_dir / "unified.jsonl",
        output_dir / "report.json",
    )
    if unreadable or not summary["samples_written"] or summary["invariant_errors"]:
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
