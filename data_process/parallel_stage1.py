"""Stage 1 on two processes with the same output as one (not an entry point; ``data_process.py --workers 2`` uses it).

Serially, stage 1 runs its jobs in order (every ToolACE input, then every xLAM input) into one ``unified.jsonl``.
Two processes split that order at one point: this process runs the jobs before it (the *head*) into the usual
files, a forked process runs the jobs after it (the *tail*) into ``unified.tail-part.jsonl`` and
``rejections.tail-part.jsonl``; the tail's files are then appended to the head's and its counts merged into the
head's report.

The point lies between two inputs, or inside the last input when that is a JSON list file: then the tail reads the
file from a character offset on (:func:`raw_inputs.iter_raw_rows` with a window; it decodes the elements before
the offset only to count them). It is placed where the estimated work of the two processes (the costs below, times
the input sizes) is most even. xLAM rows are never split between the processes when an augmentation rate is set:
its draws follow one random sequence over all xLAM rows. The split never changes the output, only the time.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from raw_inputs import json_list_size
from records import Report, fork_context

# Seconds per MB of input on one core, per mode and source (2-core benchmark machine, bench/bench_data.py), and for
# decoding JSON-list elements only to count them (the tail's cost for the head's part of a cut file).
COSTS = {"faithful": {"toolace": 0.047, "xlam": 0.0132}, "improved": {"toolace": 0.027, "xlam": 0.0165}}
SKIP_COST = 0.0044
MIN_SHARE = 0.03  # a cut this close to either end of a file is not worth it
TAIL = ".tail-part"


@dataclass
class Plan:
    """Jobs ``(source, input, group, window)`` of this process (head) and of the forked one (tail)."""

    head: list[tuple]
    tail: list[tuple]
    load: float  # the estimated seconds of the busier process


def _size(spec: str) -> int:
    """Bytes of a file, or of all files in a folder (a ``datasets`` save); 0 when unknown (a hub name)."""
    try:
        if os.path.isfile(spec):
            return os.path.getsize(spec)
        total = 0
        for folder, _, names in os.walk(spec):
            total += sum(os.path.getsize(os.path.join(folder, name)) for name in names)
        return total
    except OSError:
        return 0


def plan_split(jobs: list[tuple], keep_xlam_together: bool, mode: str = "improved") -> Plan | None:
    """Where to split ``jobs`` (``(source, input, group)`` in serial order), or ``None`` to run them in one process.

    ``keep_xlam_together``: every xLAM row in one process (set when an augmentation rate is set)."""
    costs = COSTS[mode]
    work = [costs[job[0]] * _size(job[1]) for job in jobs]
    total = sum(work)
    whole = [(*job, None) for job in jobs]
    plans = []
    for k in range(1, len(jobs)):
        if keep_xlam_together and jobs[k - 1][0] == jobs[k][0] == "xlam":
            continue
        head = sum(work[:k])
        plans.append(Plan(whole[:k], whole[k:], max(head, total - head) if total else 0.0))
    last = jobs[-1] if jobs else None
    size = json_list_size(last[1]) if last and not (keep_xlam_together and last[0] == "xlam") else None
    if size and total:
        before, own = total - work[-1], work[-1]
        # before + share * own = SKIP_COST * share * size + (1 - share) * own
        share = (own - before) / (2 * own - SKIP_COST * size) if 2 * own > SKIP_COST * size else 0.0
        if MIN_SHARE <= share <= 1 - MIN_SHARE:
            cut = int(share * size)
            head_jobs = [*whole[:-1], (*last, (0, cut))]
            tail_jobs = [(*last, (cut, 4 * size + 16))]  # 4 x the bytes: past the last character
            plans.append(Plan(head_jobs, tail_jobs, before + share * own))
    if not plans:
        return None
    if not total:  # sizes unknown (hub inputs): split where the sources meet, as each source is one process's work
        return next((plan for plan in plans if plan.head[-1][0] != plan.tail[0][0]), None)
    best = min(plans, key=lambda plan: plan.load)
    return best if best.load < total else None


def _run_tail(connection, plan: Plan, run_jobs, options, output_dir, bar_line) -> None:
    report, unreadable = run_jobs(plan.tail, options, output_dir, bar_line, part=TAIL)
    connection.send((report.sources, report.examples, unreadable))
    connection.close()


def run_split(plan: Plan, run_jobs, options, output_dir: Path, bar_line: int | None, part="") -> tuple[Report, int]:
    """Run the tail in a forked process and the head here (into ``unified{part}.jsonl`` ...), append the tail's
    files and merge its counts; the tail's progress bars go one console line below the head's (``bar_line``
    ``None``: no bars)."""
    context = fork_context()
    receiver, sender = context.Pipe(duplex=False)
    tail_line = None if bar_line is None else bar_line + 1
    child = context.Process(target=_run_tail, args=(sender, plan, run_jobs, options, output_dir, tail_line))
    child.start()
    sender.close()
    try:
        report, unreadable = run_jobs(plan.head, options, output_dir, bar_line, part=part)
        try:
            sources, examples, tail_unreadable = receiver.recv()
        except EOFError:  # the worker died before reporting; its exit code says more
            sources = None
    finally:
        child.join()
    if sources is None or child.exitcode != 0:
        raise RuntimeError(f"the stage-1 worker process failed (exit code {child.exitcode})")
    report.absorb(sources, examples)
    for name in ("unified", "rejections"):
        append_file(output_dir / f"{name}{TAIL}.jsonl", output_dir / f"{name}{part}.jsonl")
    return report, unreadable + tail_unreadable


def append_file(part: Path, target: Path) -> None:
    """Append ``part`` to ``target`` and remove it; the kernel copies where it can (not to an O_APPEND file)."""
    with open(target, "r+b") as head, open(part, "rb") as tail:
        head.seek(0, os.SEEK_END)
        size, copied = os.fstat(tail.fileno()).st_size, 0
        try:
            while copied < size:
                done = os.copy_file_range(tail.fileno(), head.fileno(), size - copied)
                if done == 0:
                    break
                copied += done
        except (AttributeError, OSError):  # no copy_file_range here, or not between these files: copy the rest
            pass
        if copied < size:
            tail.seek(copied)
            head.seek(0, os.SEEK_END)
            shutil.copyfileobj(tail, head, 1 << 24)
    part.unlink()
