"""Read raw rows, one at a time, from JSON, JSON Lines, parquet, a ``datasets`` saved directory or a hub name.

Not an entry point. :func:`iter_raw_rows` yields :class:`RawRow` objects; a row that cannot be decoded comes back
with ``error`` set (and is counted by the caller), a file that cannot be read at all raises :class:`InputError`
with a clear message. Nothing is dropped silently:

* ``*.jsonl`` / ``*.json`` whose first character is ``{``: JSON Lines (blank lines skipped, a byte-order mark at the
  start ignored); a line that is not UTF-8 is rejected (``invalid_utf8``), never kept with U+FFFD in it;
* ``*.json`` whose first character is ``[``: a JSON list, decoded element by element (about 1 MB of text in memory).
  Lists written back to back (``cat a.json b.json``) are read one after the other; an element with bytes that are
  not UTF-8 is rejected (``invalid_utf8``) and the next one read; text after the last list, or a broken element,
  is one ``malformed_json`` row (with its element index and character offset) and the rest of the file is lost;
* ``*.parquet``: read in record batches with pyarrow;
* a directory written by ``datasets.save_to_disk`` (a Dataset, or a DatasetDict: all splits in order);
* ``owner/name`` that is not a local path: ``datasets.load_dataset(name, split=...)`` (needs network).

Rows nested too deeply for the JSON decoder (``too_deeply_nested``) or holding an integer of more than 4,300 digits
(``integer_too_large``) are rejected one by one.
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
_NOT_UTF8 = re.compile("[\udc80-\udcff]")  # bytes that were not UTF-8, after decoding with "surrogateescape"
_VALUE_END = re.compile(r'[^"\[\]{}]*')
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)


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


def iter_raw_rows(spec: str) -> Iterator[RawRow]:
    """The rows of ``spec``, in order."""
    kind = input_kind(spec)
    if kind == "json":
        yield from _iter_json_file(Path(spec))
    elif kind == "jsonl":
        yield from _iter_json_lines(Path(spec))
    elif kind == "parquet":
        yield from _iter_parquet(Path(spec))
    else:
        yield from _iter_datasets(spec, kind)


def decode_error(exc: Exception) -> tuple[str, str]:
    """``(reason, detail)`` for an exception of a JSON decoder (or of code walking a decoded value)."""
    if isinstance(exc, RecursionError):
        return "too_deeply_nested", "nested too deeply to decode"
    if isinstance(exc, ValueError) and "digits" in str(exc) and not isinstance(exc, json.JSONDecodeError):
        return "integer_too_large", str(exc)
    return "malformed_json", str(exc)


def _first_char(path: Path) -> str:
    with open(path, encoding="utf-8", errors="surrogateescape") as handle:
        while True:
            chunk = handle.read(4096)
            if not chunk:
                return ""
            stripped = chunk.lstrip("\ufeff \t\r\n")
            if stripped:
                return stripped[0]


def _iter_json_file(path: Path) -> Iterator[RawRow]:
    first = _first_char(path)
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
    with open(path, "rb") as handle:
        for number, data in enumerate(handle, start=1):
            if number == 1 and data.startswith(b"\xef\xbb\xbf"):
                data = data[3:]  # a byte-order mark
            if not data.strip():
                continue
            empty = False
            position = f"{path}:{number}"
            try:
                row = json.loads(data.decode("utf-8"))
            except UnicodeDecodeError as exc:
                yield RawRow(position, error="invalid_utf8", detail=f"line {number}: {exc}")
                continue
            except (ValueError, RecursionError) as exc:
                code, detail = decode_error(exc)
                yield RawRow(position, error=code, detail=f"line {number}: {detail}")
                continue
            yield _checked(position, row)
    if empty:
        raise InputError(f"{path}: empty file (no JSON lines)")


def _checked(position: str, row: Any) -> RawRow:
    if isinstance(row, dict):
        return RawRow(position, row)
    return RawRow(position, error="not_an_object", detail=f"row is a {type(row).__name__}, not a JSON object")


def _value_end(text: str, pos: int) -> int | None:
    """Where the JSON value (object or list) starting at ``text[pos]`` ends, by bracket counting, or ``None`` if it
    does not end in ``text``. Used to step over an element the decoder refused without a syntax error."""
    depth = 0
    while pos < len(text):
        pos = _VALUE_END.match(text, pos).end()
        if pos >= len(text):
            return None
        char = text[pos]
        if char == '"':
            string = _STRING.match(text, pos)
            if string is None:
                return None
            pos = string.end()
            continue
        depth += 1 if char in "[{" else -1
        pos += 1
        if depth == 0:
            return pos
    return None


def _iter_json_array(path: Path) -> Iterator[RawRow]:
    """Decode ``[obj, obj, ...]`` (and lists that follow it) element by element, keeping about one chunk of text in
    memory."""
    decoder = json.JSONDecoder()
    with open(path, encoding="utf-8", errors="surrogateescape") as handle:
        buffer = handle.read(CHUNK_CHARS).lstrip("\ufeff")
        consumed = 0  # characters dropped from the front of ``buffer`` so far
        eof = False
        pos = 0
        index = 0
        state = "list"  # "list": expect "[" (or the end), "value": after "[" or ",", "next": expect "," or "]"
        read_size = CHUNK_CHARS

        def refill(size: int) -> None:
            nonlocal buffer, pos, eof, consumed
            more = handle.read(size)
            consumed += pos
            buffer, pos, eof = buffer[pos:] + more, 0, not more

        def broken(message: str, offset: int) -> RawRow:
            detail = f"{message} at element {index} (character {offset}); the rest of the file is not read"
            return RawRow(f"{path}#{index}", error="malformed_json", detail=detail)

        while True:
            pos = _WHITESPACE.match(buffer, pos).end()
            if pos >= len(buffer) and not eof:
                refill(read_size)
                continue
            offset = consumed + pos
            char = buffer[pos] if pos < len(buffer) else ""
            if state == "list":
                if char == "":
                    return
                if char != "[":
                    yield broken("text after the JSON list", offset)
                    return
                pos += 1
                state = "value"
                first = True
                continue
            if char == "]" and (state == "next" or first):
                pos += 1
                state = "list"
                continue
            if state == "next":
                if char != ",":
                    yield broken("expected ',' or ']'", offset)
                    return
                pos += 1
                state, first = "value", False
                continue
            try:
                value, end = decoder.raw_decode(buffer, pos)
                if end >= len(buffer) and not eof:
                    raise json.JSONDecodeError("value may continue", buffer, end)
            except json.JSONDecodeError as exc:
                if eof:
                    yield broken(f"malformed JSON ({exc.msg})", offset)
                    return
                read_size *= 2  # grow geometrically so a broken element cannot make this quadratic
                refill(read_size)
                continue
            except (ValueError, RecursionError) as exc:  # too deep, or an integer too long
                end = _value_end(buffer, pos)
                if end is None and not eof:
                    read_size *= 2
                    refill(read_size)
                    continue
                if end is None:
                    yield broken("unterminated value", offset)
                    return
                code, detail = decode_error(exc)
                yield RawRow(f"{path}#{index}", error=code, detail=f"element {index} (character {offset}): {detail}")
            else:
                text = buffer[pos:end]
                if not text.isascii() and _NOT_UTF8.search(text):
                    detail = f"element {index} (character {offset}) holds bytes that are not UTF-8"
                    yield RawRow(f"{path}#{index}", error="invalid_utf8", detail=detail)
                else:
                    yield _checked(f"{path}#{index}", value)
            index += 1
            pos = end
            state, first = "next", False
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
