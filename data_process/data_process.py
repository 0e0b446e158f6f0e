"""Stage 1 of the data pipeline: raw ToolACE + xLAM rows -> unified JSONL records + an accounting report.

Command line (from the repository root):

    cd data_process && python data_process.py --toolace /data/ToolACE/data.json \\
        --xlam /data/xlam_function_calling_60k.json --output-dir ../data/unified [--mode improved|faithful]

Writes ``<output-dir>/unified.jsonl`` (one sample per line), ``report.json`` (counts, rejections by reason, per-source
and per-group counts, warnings) and ``rejections.jsonl`` (one line per rejected input/row/call turn with its
position), and prints the comparison with the paper's Table 1. Next stage: ``to_verl_parquet.py`` (or the wrapper
``verl/examples/data_preprocess/toolcall_preprocess.py``). Flags and the faithful/improved table: README.md here.

Exit status: 0 on success; 1 if an input could not be read at all or no sample was written; 2 on a usage error or,
with ``--strict``, on the first rejection.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
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
from parallel_stage1 import plan_split, run_split  # noqa: E402
from raw_inputs import InputError, iter_raw_rows  # noqa: E402
from records import (  # noqa: E402
    MODES,
    RawOptions,
    RecordEncoder,
    Report,
    RowRejected,
    StrictModeError,
    add_run_flags,
    fork_context,
    log,
    progress,
)

PAPER_TABLE_1 = {"toolace/single": (10500, 8183), "toolace/multi": (800, 1470), "xlam/xlam": (60000, 60000)}
LOW_YIELD = 0.01
PARTIAL = ".partial"  # output files while they are written


class Stage1:
    """Streams every input through its source processor into ``unified.jsonl``, counting everything."""

    def __init__(self, options: RawOptions, report: Report, output, bar_line: int | None):
        self.options, self.report, self.output, self.bar_line = options, report, output, bar_line
        self.augment_rng = random.Random(f"{options.seed}:augment")
        self.unreadable_inputs = 0
        self.encoder = RecordEncoder()

    def write(self, record: dict, source: str, origin: str) -> None:
        record["source"] = source
        record["origin"] = origin
        self.output.write(self.encoder.encode(record) + "\n")
        self.report.source(source).ids[record["id"]] += 1

    def run_input(self, source: str, spec: str, group: str | None = None, window: tuple | None = None) -> None:
        """Every row of one input (with ``window``: of that part of a JSON list, see ``parallel_stage1.py``)."""
        counts = self.report.source(source)
        entry = {"input": spec, "group": group, "rows": 0, "error": None}
        if window is not None and window[0] > 0:
            entry["continues"] = True  # the rest of an input that an earlier part began (merged into its entry)
        counts.inputs.append(entry)
        log.info("reading %s input %s%s", source, spec, f" (all dialogs {group}-turn)" if group else "")
        rows = iter_raw_rows(spec, window)
        try:
            bar_enabled, description = self.bar_line is not None, f"{source} {Path(spec).name}"
            for raw in progress(rows, description, bar_enabled, position=self.bar_line):
                entry["rows"] += 1
                counts.rows_read += 1
                if raw.error:
                    self.report.reject(source, "row", raw.error, raw.detail, raw.position)
                    continue
                self.process_row(source, raw.row, raw.position, group)
        except InputError as exc:
            entry["error"] = str(exc)
            self.unreadable_inputs += 1
            log.error("%s", exc)
            self.report.reject(source, "input", "input_unreadable", str(exc), spec)

    def process_row(self, source: str, row: dict, position: str, group: str | None) -> None:
        counts = self.report.source(source)
        try:
            if source == "toolace":
                outcome = toolace.process_dialog(row, self.options, group)
            else:
                outcome = {"group": "xlam", "samples": [xlam.process_row(row, self.options)], "call_turns": 1}
        except RowRejected as exc:
            self.report.reject(source, "row", exc.code, exc.detail, position)
            return
        counts.rows_used += 1
        counts.call_turns += outcome["call_turns"]
        group_counts = counts.groups.get(outcome["group"])
        if group_counts is None:
            group_counts = counts.groups[outcome["group"]] = _new_group()
        group_counts["dialogs"] += 1
        for turn, code, detail in outcome.get("rejected", ()):
            self.report.reject(source, "call_turn", code, detail, f"{position}/turn {turn}")
        for record in outcome["samples"]:
            turn = record.pop("turn", None)
            origin = position if turn is None else f"{position}/turn {turn}"
            if record["answer"] or source == "xlam":
                counts.samples_kept += 1
                group_counts["samples"] += 1
            else:
                counts.nocall_samples += 1
            if source == "xlam":
                self.augment(record, origin)
            else:
                self.write(record, source, origin)

    def augment(self, record: dict, origin: str) -> None:
        counts = self.report.source("xlam")
        masked = augmentation.mask_names(record, self.augment_rng, self.options.mask_rate)
        if masked is not None:
            counts.masked_samples += 1
        self.write(masked or record, "xlam", origin)
        extra = augmentation.irrelevance_sample(record, self.augment_rng, self.options.irrelevance_rate)
        if extra is not None:
            counts.augmented_samples["irrelevance"] += 1
            self.write(extra, "xlam", origin + "/irrelevance")


def run_jobs(jobs, options, output_dir: Path, bar_line: int | None, strict=False, part="") -> tuple[Report, int]:
    """Run ``(source, input, group[, window])`` jobs in order into ``unified.jsonl`` / ``rejections.jsonl`` of
    ``output_dir`` (``unified{part}.jsonl`` ... when ``part`` is given); returns the report and the number of
    unreadable inputs."""
    report = Report(output_dir / f"rejections{part}.jsonl", strict=strict)
    try:
        with open(output_dir / f"unified{part}.jsonl", "w", encoding="utf-8", buffering=1 << 20) as output:
            stage = Stage1(options, report, output, bar_line)
            for source, spec, group, *window in jobs:
                stage.run_input(source, spec, group, *window)
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
    inputs.add_argument(
        "--toolace",
        nargs="+",
        action="extend",
        default=[],
        metavar="PATH",
        help="ToolACE dialogs (hub roles user/assistant/tool or human/gpt/observation/function_call); "
        "each dialog is single-turn or multi-turn by the rule '>= 2 user turns = multi'",
    )
    inputs.add_argument(
        "--toolace-single",
        nargs="+",
        action="extend",
        default=[],
        metavar="PATH",
        help="ToolACE dialogs already split by you: all counted as single-turn (the original layout)",
    )
    inputs.add_argument(
        "--toolace-multi",
        nargs="+",
        action="extend",
        default=[],
        metavar="PATH",
        help="ToolACE dialogs already split by you: all counted as multi-turn",
    )
    inputs.add_argument(
        "--xlam",
        nargs="+",
        action="extend",
        default=[],
        metavar="PATH",
        help="xLAM rows (id, query, answers, tools), e.g. Salesforce/xlam-function-calling-60k",
    )
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
    add_run_flags(
        parser,
        "2: two processes share the inputs (split between inputs or inside the last JSON-list input); "
        "1: one process; the output is the same",
    )
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
    )
    output_dir = Path(args.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    jobs = [("toolace", spec, None) for spec in args.toolace]
    jobs += [("toolace", spec, "single") for spec in args.toolace_single]
    jobs += [("toolace", spec, "multi") for spec in args.toolace_multi]
    jobs += [("xlam", spec, None) for spec in args.xlam]
    try:
        bar_line = None if args.no_progress else 0  # progress bars on the console's first line (None: none)
        augmented = options.irrelevance_rate > 0 or options.mask_rate > 0  # draws follow one sequence over xLAM
        parallel = args.workers >= 2 and not args.strict and fork_context() is not None
        plan = plan_split(jobs, augmented, options.mode) if parallel else None
        # written as *.partial.jsonl and renamed when complete: a killed run never leaves a short unified.jsonl
        if plan is not None:
            report, unreadable = run_split(plan, run_jobs, options, output_dir, bar_line, part=PARTIAL)
        else:
            report, unreadable = run_jobs(jobs, options, output_dir, bar_line, strict=args.strict, part=PARTIAL)
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
