"""Read raw rows, one at a time, from JSON, JSON Lines, parquet, a ``datasets`` saved directory or a hub name.

Not an entry point. :func:`iter_raw_rows` yields :class:`RawRow` objects; a row that cannot be decoded comes back
with ``error`` set (and is counted by the caller), a file that cannot be read at all raises :class:`InputError`
with a clear message. JSON lists are decoded element by element (never the whole file at once).

* ``*.jsonl`` / ``*.json`` whose first character is ``{``: JSON Lines (one object per line, blank lines skipped);
* ``*.json`` whose first character is ``[``: a JSON list of objects;
* ``*.parquet``: read in record batches with pyarrow;
* a directory written by ``datasets.save_to_disk`` (a Dataset, or a DatasetDict: all splits in order);
* ``owner/name`` that is not a local path: ``datasets.load_dataset(name, split=...)`` (needs network).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CHUNK_CHARS = 1 << 20
_WHITESPACE = re.compile(r"[ \t\n\r]*")
_HUB_NAME = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+(:[\w.-]+)?$")


class InputError(Exception):
    """An input that cannot be read at all (missing, empty, not JSON, ...); the message says which and why."""


@dataclass
class RawRow:
    position: str
    row: dict[str, Any] | None = None
    error: str | None = None  # reason code when the row itself could not be decoded
    detail: str = ""


def input_kind(spec: str) -> str:
    """``json``, ``jsonl``, ``parquet``, ``datasets-dir`` or ``hub``; raises :class:`InputError` for a wrong path."""
    path = Path(spec)
    if path.is_dir():
        return "datasets-dir"
    if path.is_file():
        suffix = path.suffix.lower()
        if suffix == ".parquet":
            return "parquet"
        if suffix in (".jsonl", ".ndjson"):
            return "jsonl"
        return "json"
    if not path.suffix and _HUB_NAME.match(spec):
        return "hub"
    raise InputError(f"input not found: {spec!r} (no such file or directory, and not a hub name like 'owner/name')")


def iter_raw_rows(spec: str, window: tuple[int, int] | None = None) -> Iterator[RawRow]:
    """The rows of ``spec``, in order.

    ``window=(start, stop)`` (a JSON list file only, see :func:`json_list_size`): just the elements that begin at a
    character offset in ``[start, stop)``, with their positions in the whole list. Windows that tile the file give
    every row exactly once between them, and an error is raised by exactly one of them: the window holding the
    offset where it is found (the elements before ``start`` are decoded to be counted, but their errors belong to
    an earlier window)."""
    kind = input_kind(spec)
    if window is not None:
        if kind != "json":
            raise ValueError(f"{spec}: a window needs a JSON list file")
        yield from _iter_json_array(Path(spec), window)
    elif kind == "json":
        yield from _iter_json_file(Path(spec))
    elif kind == "jsonl":
        yield from _iter_json_lines(Path(spec))
    elif kind == "parquet":
        yield from _iter_parquet(Path(spec))
    else:
        yield from _iter_datasets(spec, kind)


def json_list_size(spec: str) -> int | None:
    """The size in bytes of ``spec`` if it is a readable JSON list file (it can be read in windows), else ``None``."""
    try:
        if input_kind(spec) == "json" and _first_char(Path(spec)) == "[":
            return Path(spec).stat().st_size
    except (InputError, OSError, UnicodeDecodeError):
        pass
    return None


def _first_char(path: Path) -> str:
    with open(path, encoding="utf-8") as handle:
        while True:
            chunk = handle.read(4096)
            if not chunk:
                return ""
            stripped = chunk.lstrip("\ufeff \t\r\n")
            if stripped:
                return stripped[0]


def _iter_json_file(path: Path) -> Iterator[RawRow]:
    try:
        first = _first_char(path)
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not UTF-8 text ({exc.reason})") from None
    if first == "":
        raise InputError(f"{path}: empty file")
    if first == "[":
        yield from _iter_json_array(path)
    elif first == "{":
        yield from _iter_json_lines(path)
    else:
        raise InputError(f"{path}: neither a JSON list nor JSON lines (starts with {first!r})")


def _iter_json_lines(path: Path) -> Iterator[RawRow]:
    empty = True
    with open(path, encoding="utf-8", errors="replace") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            empty = False
            position = f"{path}:{number}"
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                yield RawRow(position, error="malformed_json", detail=f"line {number}: {exc}")
                continue
            yield _checked(position, row)
    if empty:
        raise InputError(f"{path}: empty file (no JSON lines)")


def _checked(position: str, row: Any) -> RawRow:
    if isinstance(row, dict):
        return RawRow(position, row)
    return RawRow(position, error="not_an_object", detail=f"row is a {type(row).__name__}, not a JSON object")


def _iter_json_array(path: Path, window: tuple[int, int] | None = None) -> Iterator[RawRow]:
    """Decode ``[obj, obj, ...]`` element by element, keeping about one chunk of text in memory; with ``window``, see
    :func:`iter_raw_rows`."""
    start, stop = window if window is not None else (0, None)
    try:
        yield from _json_array_rows(path, start, stop)
    except _WindowEnd:
        return


class _WindowEnd(Exception):
    """An error found before the window's start: the earlier window that holds it reports it."""


def _json_array_rows(path: Path, start: int, stop: int | None) -> Iterator[RawRow]:
    def fail(message: str, offset: int) -> InputError:
        return InputError(message) if offset >= start else _WindowEnd()

    decoder = json.JSONDecoder()
    with open(path, encoding="utf-8") as handle:
        try:
            buffer = handle.read(CHUNK_CHARS)
        except UnicodeDecodeError as exc:
            raise fail(f"{path}: not UTF-8 text ({exc.reason})", 0) from None
        consumed = len(buffer)
        buffer = buffer.lstrip("\ufeff")
        consumed -= len(buffer)  # characters dropped from the front of ``buffer`` so far
        eof = False
        pos = _WHITESPACE.match(buffer).end() + 1  # past "["
        index = 0
        expect_value = True  # directly after "[" or ","
        read_size = CHUNK_CHARS

        def refill(size: int) -> None:
            nonlocal buffer, pos, eof, consumed
            try:
                more = handle.read(size)
            except UnicodeDecodeError as exc:
                raise fail(
                    f"{path}: not UTF-8 text after element {index - 1} ({exc.reason})", consumed + pos
                ) from None
            consumed += pos
            buffer, pos, eof = buffer[pos:] + more, 0, not more

        while True:
            pos = _WHITESPACE.match(buffer, pos).end()
            if pos >= len(buffer) and not eof:
                refill(read_size)
                continue
            offset = consumed + pos
            if stop is not None and offset >= stop:
                return
            char = buffer[pos] if pos < len(buffer) else ""
            if char == "]" and (expect_value is False or index == 0):
                return
            if not expect_value:
                if char != ",":
                    raise fail(f"{path}: malformed JSON list after element {index - 1} (expected ',' or ']')", offset)
                pos += 1
                expect_value = True
                continue
            try:
                value, end = decoder.raw_decode(buffer, pos)
                if end >= len(buffer) and not eof:
                    raise json.JSONDecodeError("value may continue", buffer, end)
            except json.JSONDecodeError as exc:
                if eof:
                    raise fail(f"{path}: malformed JSON at list element {index}: {exc.msg}", offset) from None
                read_size *= 2  # grow geometrically so a broken element cannot make this quadratic
                refill(read_size)
                continue
            if offset >= start:
                yield _checked(f"{path}#{index}", value)
            index += 1
            pos = end
            expect_value = False
            read_size = CHUNK_CHARS


def _iter_parquet(path: Path) -> Iterator[RawRow]:
    try:
        import pyarrow.parquet as pq

        parquet = pq.ParquetFile(path)
    except Exception as exc:  # pyarrow raises several error types for unreadable files
        raise InputError(f"{path}: not a readable parquet file ({exc})") from None
    if parquet.metadata.num_rows == 0:
        raise InputError(f"{path}: empty parquet file")
    index = 0
    for batch in parquet.iter_batches(batch_size=1000):
        for row in batch.to_pylist():
            yield _checked(f"{path}#{index}", row)
            index += 1


def _iter_datasets(spec: str, kind: str) -> Iterator[RawRow]:
    try:
        import datasets
    except ImportError:
        raise InputError(f"{spec}: reading a {kind} input needs the 'datasets' package") from None
    try:
        if kind == "hub":
            name, _, split = spec.partition(":")
            loaded = datasets.load_dataset(name, split=split or "train")
        else:
            loaded = datasets.load_from_disk(spec)
    except Exception as exc:  # datasets raises many error types (network, format, missing files)
        raise InputError(f"{spec}: cannot load as a {kind} ({type(exc).__name__}: {exc})") from None
    splits = loaded.items() if isinstance(loaded, dict) else [("", loaded)]
    total = 0
    for split, dataset in splits:
        for index, row in enumerate(dataset):
            total += 1
            yield _checked(f"{spec}{'/' + split if split else ''}#{index}", row)
    if total == 0:
        raise InputError(f"{spec}: empty dataset")
