"""Stage 2 batches: record positions -> one Arrow table of the verl parquet schema (not an entry point).

:class:`BatchBuilder` reads each record by byte offset (:func:`line_spans`), builds its row with
``verl_rows.RowBuilder`` and the batch's columns as Arrow arrays made from one buffer each (:func:`string_array`),
and, with a tokenizer, measures and filters overlong prompts. Used by ``to_verl_parquet.py``.
"""

from __future__ import annotations

import mmap
import os
from array import array
from itertools import accumulate
from pathlib import Path
from typing import Any

from verl_rows import RowBuilder

from tool_n1.token_counts import chat_prompt_lengths

_ASCII_WHITESPACE = b" \t\n\r\x0b\x0c"  # what bytes.strip() removes


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


class TokenCounter:
    """Prompt length in tokens with a local tokenizer's chat template (generation prompt added, like verl)."""

    def __init__(self, path: str):
        from transformers import AutoTokenizer

        self.tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)

    def lengths(self, prompts: list[list[dict[str, str]]]) -> list[int]:
        return chat_prompt_lengths(self.tokenizer, prompts)


def line_spans(path: Path) -> tuple[list[int], list[int]]:
    """Byte offset and length (newline included) of every non-blank line, found in a memory map of the file."""
    offsets: list[int] = []
    lengths: list[int] = []
    with open(path, "rb") as handle:
        size = os.fstat(handle.fileno()).st_size
        if size == 0:
            return offsets, lengths
        with mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as data:
            find, start = data.find, 0
            while start < size:
                end = find(b"\n", start)
                stop = size if end < 0 else end + 1
                if data[start] not in _ASCII_WHITESPACE or data[start:stop].strip():
                    offsets.append(start)
                    lengths.append(stop - start)
                start = stop
    return offsets, lengths


def string_array(values: list[str]):
    """``pa.array(values, pa.string())`` built from one UTF-8 buffer and its offsets.

    Faster for many long strings, and it never calls pyarrow's pandas check (which imports pandas, 0.2 s a
    process). Raises ``UnicodeEncodeError`` for a lone surrogate, which Arrow cannot store either."""
    import pyarrow as pa

    text = "".join(values)
    data = text.encode("utf-8")
    if len(data) >= 2**31:  # beyond 32-bit offsets: let pyarrow report it
        return pa.array(values, pa.string())
    lengths = map(len, values) if len(data) == len(text) else [len(value.encode("utf-8")) for value in values]
    offsets = array("i", [0])
    offsets.extend(accumulate(lengths))
    return pa.StringArray.from_buffers(len(values), pa.py_buffer(offsets), pa.py_buffer(data))


def int_array(values: list[int], code: str):
    """``pa.array(values, pa.int32())`` (``code`` ``"i"``) or ``pa.int64()`` (``"q"``) from the values' buffer."""
    import pyarrow as pa

    kind = {"i": pa.int32(), "q": pa.int64()}[code]
    return pa.Array.from_buffers(kind, len(values), [None, pa.py_buffer(array(code, values))])


def _add_messages(pairs, firsts: list[str], seconds: list[str], offsets: list[int]) -> None:
    """One row's ``(speaker, text)`` pairs onto the flat columns of a list-of-struct column, and its end offset."""
    for first, second in pairs:
        firsts.append(first)
        seconds.append(second)
    offsets.append(len(firsts))


class Columns:
    """One batch of parquet rows as column lists (turned into Arrow arrays directly, no row dicts)."""

    def __init__(self, keep_prompts: bool):
        self.tools: list[str] = []
        self.conv_offsets, self.conv_from, self.conv_value = [0], [], []
        self.answer: list[str] = []
        self.raw_system: list[str] = []
        self.prompt_offsets, self.roles, self.contents = [0], [], []
        self.index: list[int] = []
        self.ids: list[str] = []
        self.origins: list[str] = []
        self.prompts: list[list[dict[str, str]]] | None = [] if keep_prompts else None

    def __len__(self) -> int:
        return len(self.tools)

    def append(self, row: tuple, index: int) -> None:
        tools, conversations, answer, raw_system, prompt, record_id, origin = row
        self.tools.append(tools)
        _add_messages(conversations, self.conv_from, self.conv_value, self.conv_offsets)
        self.answer.append(answer)
        self.raw_system.append(raw_system)
        _add_messages(prompt, self.roles, self.contents, self.prompt_offsets)
        self.index.append(index)
        self.ids.append(record_id)
        self.origins.append(origin)
        if self.prompts is not None:
            self.prompts.append([{"role": role, "content": content} for role, content in prompt])

    def table(self, schema, split: str, opts):
        """The batch as a table of ``schema``, equal to ``pa.Table.from_pylist`` of the same rows."""
        import pyarrow as pa

        n = len(self.tools)

        def messages(name, offsets, first, second):
            kind = schema.field(name).type
            values = pa.StructArray.from_arrays(
                [string_array(first), string_array(second)], fields=list(kind.value_type)
            )
            return pa.ListArray.from_arrays(int_array(offsets, "i"), values, type=kind)

        def struct(name, arrays):
            return pa.StructArray.from_arrays(arrays, fields=list(schema.field(name).type))

        answer = string_array(self.answer)
        extra = [string_array([split] * n), int_array(self.index, "q"), string_array([opts.prompt_type] * n)]
        if opts.provenance:
            extra += [string_array(self.ids), string_array(self.origins)]
        columns = [
            string_array(self.tools),
            messages("conversations", self.conv_offsets, self.conv_from, self.conv_value),
            answer,
            string_array(self.raw_system),
            string_array([opts.data_source] * n),
            messages("prompt", self.prompt_offsets, self.roles, self.contents),
            string_array(["toolcall"] * n),
            struct("reward_model", [string_array(["rule"] * n), answer]),
            struct("extra_info", extra),
        ]
        return pa.Table.from_arrays(columns, schema=schema)


class BatchBuilder:
    """Turns a batch of record positions into one parquet table (+ its statistics)."""

    def __init__(self, path: Path, spans, opts, counter):
        self.path, self.spans, self.opts, self.counter = path, spans, opts, counter
        self.rows = RowBuilder(opts)
        self.fd: int | None = None
        self.schema = None

    def __getstate__(self) -> dict[str, Any]:  # for the engine's worker processes: no open file, empty caches
        return {**self.__dict__, "fd": None, "rows": RowBuilder(self.opts)}

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    def __call__(self, task: tuple[str, int, list[int]]) -> dict[str, Any]:
        split, first_index, positions = task
        if self.fd is None:
            self.fd = os.open(self.path, os.O_RDONLY)
        fd = self.fd
        offsets, lengths = self.spans
        columns = Columns(keep_prompts=self.counter is not None)
        result: dict[str, Any] = {"rejected": {}, "char_lengths": [], "token_lengths": [], "overlong": 0}
        global_index = self.opts.index == "global"
        reference_before = self.rows.reference_rows
        for k, position in enumerate(positions):
            line = os.pread(fd, lengths[position], offsets[position])
            try:
                row = self.rows.row(line)
            except (ValueError, KeyError, TypeError, AttributeError, RecursionError) as exc:
                result["rejected"][f"record line {position + 1}"] = f"{type(exc).__name__}: {exc}"[:300]
                continue
            columns.append(row, position if global_index else first_index + k)
            result["char_lengths"].append(sum([len(content) for _, content in row[4]]))
        if self.schema is None:
            self.schema = parquet_schema(self.opts.provenance)
        table = columns.table(self.schema, split, self.opts) if len(columns) else None
        if table is not None and self.counter is not None:
            token_lengths = self.counter.lengths(columns.prompts)
            keep = [n <= self.opts.max_prompt_length for n in token_lengths]
            result["token_lengths"], result["overlong"] = token_lengths, keep.count(False)
            table = table.filter(keep)
        result["table"] = table
        result["reference_rows"] = self.rows.reference_rows - reference_before
        return result
