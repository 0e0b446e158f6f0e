"""Processing options, rejections and the accounting report shared by the data stages.

Not an entry point: ``data_process.py`` (raw -> unified JSONL) and ``to_verl_parquet.py`` (unified -> parquet) use it.

Accounting units (checked by :meth:`Report.invariant_errors`):

* per source: ``rows_read == rows_used + sum(rows_rejected.values())`` (a row = one ToolACE dialog / one xLAM row);
* per source: ``call_turns == samples_kept + sum(call_turns_rejected.values())`` (an xLAM row is one call turn);
* no-call samples (``--include-nocall``) and augmented samples are counted apart from call turns.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import logging
import os
import pickle
import sys
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger("tool_n1.data")

MODES = ("faithful", "improved")
EXAMPLES_PER_REASON = 5

# Stage-1 option presets per mode; a command-line flag that is given explicitly overrides the preset.
CHECKS = ("check_argument_types", "check_required", "check_tool_results")
RAW_PRESETS = {
    "faithful": {"call_parser": "faithful", "tool_extraction": "faithful", "normalize_tools": False}
    | dict.fromkeys(CHECKS, False),
    "improved": {"call_parser": "robust", "tool_extraction": "robust", "normalize_tools": True}
    | dict.fromkeys(CHECKS, True),
}
MAX_NESTING = 100  # deeper answers / tools are rejected (too_deeply_nested): the next stage reads all it is given


@dataclass
class RawOptions:
    """How raw ToolACE / xLAM rows become unified records (stage 1)."""

    mode: str = "improved"
    call_parser: str = "robust"  # "faithful" (original regex semantics) or "robust" (CallStringError on bad input)
    tool_extraction: str = "robust"  # "faithful" (drop 2 chars + "]") or "robust" (JSON-decode the list in place)
    normalize_tools: bool = True  # every tool -> {"name","description","parameters":{"type":"object",...}}
    check_argument_types: bool = True  # label-noise checks (label_checks.py)
    check_required: bool = True
    check_tool_results: bool = True
    max_context_chars: int = 100_000  # 0: no limit
    include_nocall: bool = False
    irrelevance_rate: float = 0.0
    mask_rate: float = 0.0
    seed: int = 42

    @classmethod
    def for_mode(cls, mode: str, **overrides: Any) -> RawOptions:
        """The preset of ``mode`` with every override that is not ``None`` applied."""
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}; valid: {', '.join(MODES)}")
        values = {"mode": mode, **RAW_PRESETS[mode]}
        values.update({key: value for key, value in overrides.items() if value is not None})
        return cls(**values)


_ENCODER = json.JSONEncoder()  # the settings of a plain json.dumps (what json.dumps itself uses)
_encode_string = json.encoder.encode_basestring_ascii  # = json.dumps(str) with ensure_ascii
_KEY_PREFIX: dict[str, str] = {}


class RecordEncoder:
    """``json.dumps(record)`` (default settings), byte for byte, without re-encoding what repeats: the tool list of
    the previous record (a ToolACE dialog's samples share one list), the context turns of the dialog's earlier
    samples (so a long dialog costs linear time, not quadratic) and the previous ``raw_system``. Valid because
    records are not mutated once written. After :meth:`encode`, ``suspect`` says whether the tools or the answer
    may nest deeper than :data:`MAX_NESTING` (they hold more brackets)."""

    def __init__(self):
        self._tools: Any = None
        self._tools_text = ""
        self._tools_suspect = False
        self._turns: dict[int, tuple[Any, str]] = {}  # id(turn) -> (turn, its JSON); the current dialog's turns
        self._raw_system: Any = None
        self._raw_system_text = ""
        self.suspect = False

    def encode(self, record: dict[str, Any]) -> str:
        parts = []
        self.suspect = False
        for key, value in record.items():
            prefix = _KEY_PREFIX.get(key)
            if prefix is None:
                if type(key) is not str:
                    return json.dumps(record)
                prefix = _KEY_PREFIX[key] = _encode_string(key) + ": "
            if type(value) is str:
                if key == "raw_system":
                    if value is not self._raw_system:
                        self._raw_system, self._raw_system_text = value, _encode_string(value)
                    text = self._raw_system_text
                else:
                    text = _encode_string(value)
            elif key == "tools" and type(value) is list:
                text = self._encode_tools(value)
                self.suspect = self.suspect or self._tools_suspect
            elif key == "conversations" and type(value) is list:
                text = self._encode_turns(value)
            else:
                text = _ENCODER.encode(value)
                self.suspect = self.suspect or text.count("[") + text.count("{") > MAX_NESTING
            parts.append(prefix + text)
        return "{" + ", ".join(parts) + "}"

    def _encode_tools(self, tools: list[Any]) -> str:
        if tools is not self._tools:
            self._tools, self._tools_text = tools, _ENCODER.encode(tools)
            self._tools_suspect = self._tools_text.count("[") + self._tools_text.count("{") > MAX_NESTING
            self._turns.clear()  # another dialog
        return self._tools_text

    def _encode_turns(self, turns: list[Any]) -> str:
        cache, texts = self._turns, []
        for turn in turns:
            entry = cache.get(id(turn))
            if entry is None or entry[0] is not turn:
                entry = cache[id(turn)] = (turn, _ENCODER.encode(turn))
            texts.append(entry[1])
        return "[" + ", ".join(texts) + "]"


class RowRejected(Exception):
    """A whole row (dialog) cannot be used; ``code`` is a stable reason key, ``detail`` says why."""

    def __init__(self, code: str, detail: str):
        super().__init__(f"{code}: {detail}")
        self.code = code
        self.detail = detail


class StrictModeError(Exception):
    """Raised on the first rejection when ``--strict`` is set."""


@dataclass
class SourceCounts:
    """Counts for one source (``toolace`` or ``xlam``)."""

    inputs: list[dict[str, Any]] = field(default_factory=list)
    rows_read: int = 0
    rows_used: int = 0
    rows_rejected: Counter = field(default_factory=Counter)
    call_turns: int = 0
    samples_kept: int = 0
    call_turns_rejected: Counter = field(default_factory=Counter)
    nocall_samples: int = 0
    augmented_samples: Counter = field(default_factory=Counter)
    masked_samples: int = 0
    groups: dict[str, Counter] = field(default_factory=dict)  # ToolACE: {"single"/"multi": {dialogs, samples}}
    ids: Counter = field(default_factory=Counter)

    def samples_written(self) -> int:
        return self.samples_kept + self.nocall_samples + sum(self.augmented_samples.values())

    def to_dict(self) -> dict[str, Any]:
        data = {key: _plain(value) for key, value in vars(self).items()}
        data["samples_written"] = self.samples_written()
        data["yield"] = round(self.samples_kept / self.rows_read, 4) if self.rows_read else None
        return data


def _plain(value: Any) -> Any:
    """Counters and nested containers -> plain JSON-ready values."""
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    return value


class Report:
    """Counts everything, writes one JSON line per rejection, keeps a few example positions per reason."""

    def __init__(self, rejections_path: Path | None = None, strict: bool = False):
        self.sources: dict[str, SourceCounts] = {}
        self.examples: dict[str, list[str]] = {}
        self.warnings: list[str] = []
        self.strict = strict
        self._rejections = open(rejections_path, "w", encoding="utf-8") if rejections_path else None  # noqa: SIM115
        self.rejections_path = rejections_path

    def source(self, name: str) -> SourceCounts:
        counts = self.sources.get(name)
        if counts is None:
            counts = self.sources[name] = SourceCounts()
        return counts

    def reject(self, source: str, unit: str, code: str, detail: str, position: str) -> None:
        """Count one rejection; ``unit`` is ``input`` (a whole file), ``row`` or ``call_turn``."""
        counts = self.source(source)
        if unit == "row":
            counts.rows_rejected[code] += 1
        elif unit == "call_turn":
            counts.call_turns_rejected[code] += 1
        key = f"{source}/{unit}/{code}"
        examples = self.examples.setdefault(key, [])
        if len(examples) < EXAMPLES_PER_REASON:
            examples.append(position)
        if self._rejections:
            entry = {"source": source, "unit": unit, "reason": code, "position": position, "detail": detail[:500]}
            self._rejections.write(json.dumps(entry, ensure_ascii=False) + "\n")
        if self.strict:
            raise StrictModeError(f"{position}: {code}: {detail}")
        log.debug("rejected %s at %s: %s: %s", unit, position, code, detail)

    def warn(self, message: str) -> None:
        self.warnings.append(message)
        log.warning("%s\n%s\n%s", "!" * 100, message, "!" * 100)

    def invariant_errors(self) -> list[str]:
        errors = []
        for name, c in self.sources.items():
            if c.rows_read != c.rows_used + sum(c.rows_rejected.values()):
                errors.append(f"{name}: rows_read {c.rows_read} != used {c.rows_used} + rejected")
            if c.call_turns != c.samples_kept + sum(c.call_turns_rejected.values()):
                errors.append(f"{name}: call_turns {c.call_turns} != kept {c.samples_kept} + rejected")
        return errors

    def close(self) -> None:
        if self._rejections:
            self._rejections.close()
            self._rejections = None

    def to_dict(self, **extra: Any) -> dict[str, Any]:
        return {
            **extra,
            "rows_read": sum(c.rows_read for c in self.sources.values()),
            "samples_written": sum(c.samples_written() for c in self.sources.values()),
            "sources": {name: c.to_dict() for name, c in self.sources.items()},
            "rejection_examples": self.examples,
            "rejections_file": str(self.rejections_path) if self.rejections_path else None,
            "warnings": self.warnings,
            "invariant_errors": self.invariant_errors(),
        }


def length_stats(values: list[int]) -> dict[str, float | int | None]:
    """min / mean / p50 / p95 / p99 / max of a list of lengths (``None`` values when empty)."""
    if not values:
        return {"count": 0, "min": None, "mean": None, "p50": None, "p95": None, "p99": None, "max": None}
    ordered = sorted(values)

    def pct(q: float) -> int:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    mean = round(sum(ordered) / len(ordered), 1)
    return {
        "count": len(ordered),
        "min": ordered[0],
        "mean": mean,
        "p50": pct(0.5),
        "p95": pct(0.95),
        "p99": pct(0.99),
        "max": ordered[-1],
    }


# --------------------------------------------------------------------------- what both stages' command lines share


ENGINES = ("local", "datasets")
ENGINE_BLOCK = 20_000  # rows handed to the engine at a time (bounds memory; each block is one engine map)


def add_run_flags(parser: argparse.ArgumentParser, unit: str) -> None:
    """``--engine``, ``--workers``, ``--no-progress`` and ``--log-level``."""
    parser.add_argument(
        "--engine",
        choices=ENGINES,
        default="local",
        help=f"local: one loop in this process; datasets: the same per-{unit} function through Hugging Face "
        "datasets' map with --workers processes (the output is the same)",
    )
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="processes for --engine datasets")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.add_argument(
        "--log-level", default="INFO", choices=("DEBUG", "INFO", "WARNING", "ERROR"), help="console log level"
    )


def progress(iterable, description: str, enabled: bool, total: int | None = None):
    """A tqdm bar on stderr over ``iterable`` (or a bare bar with ``iterable=None``); ``iterable`` itself when
    disabled or without tqdm."""
    if not enabled:
        return iterable
    try:
        from tqdm import tqdm
    except ImportError:
        return iterable
    return tqdm(iterable, desc=description, unit=" rows", mininterval=0.5, file=sys.stderr, total=total)


def _engine_batch(batch: dict[str, list], function, args: tuple) -> dict[str, list]:
    results = function([pickle.loads(item) for item in batch["item"]], *args)
    return {"result": [pickle.dumps(result, pickle.HIGHEST_PROTOCOL) for result in results]}


def _engine_block(items: list, function, args: tuple, engine: str, workers: int, batch_size: int) -> list:
    import datasets

    datasets.disable_progress_bars()
    datasets.logging.set_verbosity_error()
    data = datasets.Dataset.from_dict({"item": [pickle.dumps(item, pickle.HIGHEST_PROTOCOL) for item in items]})
    mapped = data.map(
        _engine_batch,
        batched=True,
        batch_size=batch_size,
        num_proc=min(workers, max(1, len(items) // batch_size)),
        fn_kwargs={"function": function, "args": args},
        remove_columns=["item"],
        keep_in_memory=True,
        new_fingerprint=f"block-{os.getpid()}-{id(items)}",
    )
    return [pickle.loads(result) for result in mapped["result"]]


def engine_map(items, function, args: tuple, engine: str, workers: int, batch_size=500, block=ENGINE_BLOCK):
    """``(item, result)`` for every item, in order, where ``function(list_of_items, *args)`` gives the results of
    a batch: the same pure function a local loop runs, mapped by the engine's worker processes. An exception of
    the ``items`` iterator is raised after the results of every item before it."""
    chunk: list = []
    iterator = iter(items)
    while True:
        error = None
        try:
            for item in iterator:
                chunk.append(item)
                if len(chunk) >= block:
                    break
        except Exception as exc:  # re-raised below, after the items read before it
            error = exc
        if chunk:
            yield from zip(chunk, _engine_block(chunk, function, args, engine, workers, batch_size), strict=True)
        if error is not None:
            raise error
        if len(chunk) < block:
            return
        chunk = []


class OutputLocked(Exception):
    """Another run holds the output folder; the message says which."""


@contextmanager
def locked_output_dir(folder: Path, names: tuple[str, ...]):
    """Hold an exclusive ``flock`` on ``folder/.lock`` while the stage writes there (a second writer is refused at
    once) and remove the ``*.partial*`` files a killed run left behind, so they can never end up in an output."""
    folder.mkdir(parents=True, exist_ok=True)
    fd = os.open(folder / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
        os.close(fd)
        raise OutputLocked(
            f"{folder} is being written by another run (pid {holder}): wait for it to finish or choose another "
            "output folder"
        ) from None
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        for name in names:
            for leftover in folder.glob(f"{name}*.partial*"):
                log.warning("removing %s, left by a run that did not finish", leftover)
                leftover.unlink()
        yield
    finally:
        os.close(fd)


def too_deep(value: Any, limit: int) -> bool:
    """Whether ``value`` nests lists/objects more than ``limit`` levels deep (iterative: no recursion limit)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children = item.values() if type(item) is dict else item if type(item) is list else None
        if children is not None:
            if depth > limit:
                return True
            stack.extend((child, depth + 1) for child in children)
    return False
