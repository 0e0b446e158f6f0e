"""Stage 1 on two processes with the same output as one (not an entry point; ``data_process.py --workers 2`` uses it).

Serially, stage 1 runs its jobs in order: every ToolACE input, then every xLAM input. Two processes share them as
three parts, joined afterwards in that serial order:

* part ``a`` (forked worker): the ToolACE inputs;
* part ``b`` (this process): the xLAM inputs, the last one only up to a character offset ``cut``;
* part ``c`` (forked worker, after ``a``): the rest of the last xLAM input.

The last xLAM input is cut only when it is a JSON list file (it is read in windows, see
:func:`raw_inputs.iter_raw_rows`) and no augmentation draws from the shared random sequence (``--irrelevance-rate``
and ``--mask-rate`` 0, the default). ``cut`` balances the two processes with the measured costs below; the cut never
changes the output, only the time. Each part writes ``unified.part-<x>.jsonl`` and ``rejections.part-<x>.jsonl``,
which are joined into ``unified.jsonl`` / ``rejections.jsonl``; the part reports are merged in the same order.
"""

from __future__ import annotations

import multiprocessing
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from raw_inputs import json_list_size
from records import Report

# Seconds per MB of input on one core, per mode (2-core benchmark machine, bench/bench_data.py): processing ToolACE
# dialogs, processing xLAM rows, and decoding xLAM rows only to count them (what part c does before its window).
COSTS = {"faithful": (0.047, 0.0132, 0.0044), "improved": (0.027, 0.0165, 0.0044)}
MIN_SHARE = 0.03  # a part c smaller than this share of the last input is not worth its skip cost


@dataclass
class Plan:
    """Jobs ``(source, input, group, window)`` of each part."""

    a: list[tuple] = field(default_factory=list)
    b: list[tuple] = field(default_factory=list)
    c: list[tuple] = field(default_factory=list)


def fork_context():
    try:
        return multiprocessing.get_context("fork")
    except ValueError:  # no fork on this platform
        return None


def _size(spec: str) -> int:
    try:
        return os.path.getsize(spec) if os.path.isfile(spec) else 0
    except OSError:
        return 0


def plan_parts(jobs: list[tuple], cut_last_xlam: bool, mode: str = "improved") -> Plan | None:
    """The three parts for ``jobs`` (``(source, input, group)`` in serial order), or ``None`` when one process
    would do all the work anyway; ``mode`` selects the costs that place the cut."""
    toolace = [(*job, None) for job in jobs if job[0] == "toolace"]
    xlam = [(*job, None) for job in jobs if job[0] == "xlam"]
    plan = Plan(a=toolace, b=xlam)
    last_size = json_list_size(xlam[-1][1]) if xlam and cut_last_xlam else None
    if last_size:
        toolace_cost, xlam_cost, skip_cost = COSTS[mode]
        worker = toolace_cost * sum(_size(job[1]) for job in toolace)
        here = xlam_cost * sum(_size(job[1]) for job in xlam[:-1])
        last = xlam_cost * last_size
        # here + share * last = worker + skip_cost * share * last_size + (1 - share) * last
        share = (worker + last - here) / (2 * last - skip_cost * last_size)
        if MIN_SHARE <= share <= 1 - MIN_SHARE:
            cut = int(share * last_size)
            source, spec, group, _ = xlam[-1]
            plan.b = [*xlam[:-1], (source, spec, group, (0, cut))]
            plan.c = [(source, spec, group, (cut, last_size * 4 + 16))]  # past the end, whatever the characters
    if not (plan.a or plan.c) or not plan.b:
        return None
    return plan


def _run_worker_parts(connection, plan: Plan, run_jobs, options, output_dir, progress) -> None:
    results = []
    for name, jobs in (("a", plan.a), ("c", plan.c)):
        report, unreadable = run_jobs(jobs, options, output_dir, progress, part=f".part-{name}")
        results.append((report.sources, report.examples, unreadable))
    connection.send(results)
    connection.close()


def run_parts(plan: Plan, run_jobs, options, output_dir: Path, progress: bool) -> tuple[Report, int]:
    """Run parts a and c in a forked process and part b here, join the files and merge the reports."""
    context = fork_context()
    receiver, sender = context.Pipe(duplex=False)
    child = context.Process(target=_run_worker_parts, args=(sender, plan, run_jobs, options, output_dir, progress))
    child.start()
    sender.close()
    try:
        report, unreadable = run_jobs(plan.b, options, output_dir, progress, part=".part-b")
        try:
            (a_sources, a_examples, a_unreadable), (c_sources, c_examples, c_unreadable) = receiver.recv()
        except EOFError:  # the worker died before reporting; its exit code says more
            a_sources = None
    finally:
        child.join()
    if a_sources is None or child.exitcode != 0:
        raise RuntimeError(f"the stage-1 worker process failed (exit code {child.exitcode})")
    b_sources, b_examples = report.sources, report.examples
    report.sources, report.examples = {}, {}
    for sources, examples in ((a_sources, a_examples), (b_sources, b_examples), (c_sources, c_examples)):
        report.absorb(sources, examples)
    for name in ("unified", "rejections"):
        join_files([output_dir / f"{name}.part-{part}.jsonl" for part in "abc"], output_dir / f"{name}.jsonl")
    report.rejections_path = output_dir / "rejections.jsonl"
    return report, a_unreadable + unreadable + c_unreadable


def join_files(parts: list[Path], target: Path) -> None:
    """``target`` = the parts' bytes in order; the parts are removed. Copies in the kernel where it can."""
    first, *rest = [part for part in parts if part.exists()]
    with open(first, "r+b") as head:
        head.seek(0, os.SEEK_END)
        for part in rest:
            with open(part, "rb") as tail:
                _copy(tail, head, os.fstat(tail.fileno()).st_size)
            part.unlink()
    os.replace(first, target)


def _copy(source, target, size: int) -> None:
    copied = 0
    try:
        while copied < size:
            done = os.copy_file_range(source.fileno(), target.fileno(), size - copied)
            if done == 0:
                break
            copied += done
    except (AttributeError, OSError):  # no copy_file_range here, or not between these files: copy the rest
        pass
    if copied < size:
        source.seek(copied)
        target.seek(0, os.SEEK_END)
        shutil.copyfileobj(source, target, 1 << 24)
