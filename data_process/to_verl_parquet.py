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
import mmap
import os
import random
import sys
import time
from array import array
from collections import deque
from itertools import accumulate, islice
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO / "src") not in sys.path:  # the core package, when it is not pip-installed
    sys.path.insert(0, str(REPO / "src"))

from records import MODES, add_run_flags, fork_context, length_stats, log, progress  # noqa: E402

from tool_n1.prompts import TRAINING_TEMPLATE, training_system_prompt  # noqa: E402

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
BATCH_ROWS = 2048  # rows per parquet row group
_ASCII_WHITESPACE = b" \t\n\r\x0b\x0c"  # what bytes.strip() removes
TOOL_CACHE_SIZE = 100_000
WRITE_COST = 0.2  # parquet writing per built batch, relative to building it (measured: 0.9 s / 4.4 s)
SHM_ROOM = 1 << 30  # free bytes /dev/shm needs for the workers' Arrow files (a few batches at a time)
_TEMPLATE_OK = TRAINING_TEMPLATE.count("{tools}") == 1
_TEMPLATE_TAIL = TRAINING_TEMPLATE.split("{tools}")[-1]
try:  # decoding only; every output string is still made by json.dumps
    from orjson import loads as _fast_loads
except ImportError:  # pragma: no cover - the standard library gives the same values
    _fast_loads = json.loads


def _has_float(value: Any) -> bool:
    if type(value) is float:
        return True
    if type(value) is list:
        return any(_has_float(item) for item in value)
    if type(value) is dict:
        return any(_has_float(item) for item in value.values())
    return False


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


class TokenCounter:
    """Prompt length in tokens with a local tokenizer's chat template (generation prompt added, like verl)."""

    def __init__(self, path: str):
        from transformers import AutoTokenizer

        self.tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)

    def lengths(self, prompts: list[list[dict[str, str]]]) -> list[int]:
        texts = [self.tokenizer.apply_chat_template(p, add_generation_prompt=True, tokenize=False) for p in prompts]
        return [len(ids) for ids in self.tokenizer(texts, add_special_tokens=False)["input_ids"]]


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


def _tool_pieces(inner: bytes) -> list[bytes]:
    """``{...}, {...}`` -> candidate element texts (split at every ``}, {``; each is verified by the caller)."""
    parts = inner.split(b"}, {")
    if len(parts) == 1:
        return parts
    return [parts[0] + b"}", *[b"{" + part + b"}" for part in parts[1:-1]], b"{" + parts[-1]]


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
        for speaker, value in conversations:
            self.conv_from.append(speaker)
            self.conv_value.append(value)
        self.conv_offsets.append(len(self.conv_from))
        self.answer.append(answer)
        self.raw_system.append(raw_system)
        for role, content in prompt:
            self.roles.append(role)
            self.contents.append(content)
        self.prompt_offsets.append(len(self.roles))
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


class RowBuilder:
    """Unified JSONL line -> the values of one parquet row, exactly as :func:`reference_row` computes them.

    The fast path never decodes or re-encodes a tool it has seen before: the line's ``"tools"`` list is cut at
    ``}, {`` into element texts, and each text maps (cache) to ``json.dumps(json.loads(text))``. The split is only
    trusted when every piece is a complete JSON value (checked on a cache miss), so the list is exactly those
    elements; the rest of the line is decoded as two objects (before and after the list), which proves the list is
    the top-level ``"tools"`` member. Anything unusual goes to :func:`reference_row` (the original code).
    """

    def __init__(self, opts):
        self.opts = opts
        self.tool_texts: dict[bytes, tuple[str, str]] = {}
        self.heads: dict[str, str] = {}
        self.fast_rows = self.reference_rows = 0

    def row(self, line: bytes) -> tuple:
        row = self.fast_row(line) if _TEMPLATE_OK else None
        if row is None:
            self.reference_rows += 1
            return reference_row(line, self.opts)
        self.fast_rows += 1
        if _fast_loads is json.loads:  # orjson rejects lone surrogates (the reference path checks); json.loads not
            check_encodable(row)
        return row

    def _tool(self, piece: bytes) -> tuple[str, str]:
        entry = self.tool_texts.get(piece)
        if entry is None:
            text = json.dumps(json.loads(piece))
            entry = (text, '{"type": "function", "function": ' + text + "}")  # = json.dumps of the wrapper
            if len(self.tool_texts) >= TOOL_CACHE_SIZE:
                self.tool_texts.clear()
            self.tool_texts[piece] = entry
        return entry

    def _head(self, raw_system: str) -> str:
        """The system message up to the tool lines (preamble + template head) for this ``raw_system``."""
        head = self.heads.get(raw_system)
        if head is None:
            full = training_system_prompt([], raw_system, dedupe=self.opts.dedupe_tool_intro)
            head = full[: len(full) - len(_TEMPLATE_TAIL)]
            if len(self.heads) >= TOOL_CACHE_SIZE:
                self.heads.clear()
            self.heads[raw_system] = head
        return head

    def fast_row(self, line: bytes) -> tuple | None:
        start = line.find(b'"tools": [{')
        if start < 2 or line[start - 2 : start] != b", ":
            return None
        first = start + 9  # the list's "["
        end = line.find(b'}], "', first)
        if end < 0:
            return None
        before, after = line[: start - 2] + b"}", b"{" + line[end + 4 :]
        try:
            record = _fast_loads(before)
            rest = _fast_loads(after)
            tools = [self._tool(piece) for piece in _tool_pieces(line[first + 1 : end + 1])]
        except ValueError:  # json.JSONDecodeError, orjson.JSONDecodeError, UnicodeDecodeError
            return None
        if type(record) is not dict or type(rest) is not dict or "tools" in record or "tools" in rest:
            return None
        # orjson decodes what json.loads decodes, except integers beyond 64 bits (floats there): where an output
        # value holds a float, decode that part again with json.loads
        if type(record.get("id")) is float:
            record = json.loads(before)
        if _has_float(rest.get("answer")) or type(rest.get("id")) is float:
            rest = json.loads(after)
        record.update(rest)  # later members win, as in json.loads
        raw_system, conversations = record.get("raw_system"), record.get("conversations")
        if type(raw_system) is not str or type(conversations) is not list or "answer" not in record:
            return None
        pairs = []
        for turn in conversations:
            if type(turn) is not dict:
                return None
            speaker, value = turn.get("from"), turn.get("value")
            if type(speaker) is not str or type(value) is not str:
                return None
            pairs.append((speaker, value))
        system = self._head(raw_system) + "\n".join([tool[1] for tool in tools]) + _TEMPLATE_TAIL
        prompt = [("system", system)]
        for speaker, value in pairs:
            role = CHAT_ROLES.get(speaker)
            if role is not None:
                if speaker == "function_call":
                    value = previous_call_text(value, self.opts.previous_calls)
                prompt.append((role, value))
        return (
            "[" + ", ".join([tool[0] for tool in tools]) + "]",
            pairs,
            json.dumps(record["answer"]),
            raw_system,
            prompt,
            str(record.get("id", "")),
            str(record.get("origin", "")),
        )


def reference_row(line: bytes, opts) -> tuple:
    """The original per-record code (``json.loads`` of the whole line, ``json.dumps`` of every field).

    Raises ``UnicodeEncodeError`` (a ``ValueError``: the record is rejected) when a string holds a lone surrogate
    (``"\\ud800"`` in the JSON), which no parquet string can store."""
    record = json.loads(line)
    prompt = build_prompt(record, opts.previous_calls, opts.dedupe_tool_intro)
    row = (
        json.dumps(record["tools"]),
        [(t["from"], t["value"]) for t in record["conversations"]],
        json.dumps(record["answer"]),
        record["raw_system"],
        [(m["role"], m["content"]) for m in prompt],
        str(record.get("id", "")),
        str(record.get("origin", "")),
    )
    check_encodable(row)
    return row


def check_encodable(row: tuple) -> None:
    """Encode every string of a row as UTF-8 (raises ``UnicodeEncodeError`` for a lone surrogate)."""
    for field in row:
        if type(field) is str:
            field.encode("utf-8")
        else:
            for pair in field:
                pair[0].encode("utf-8")
                pair[1].encode("utf-8")


class BatchBuilder:
    """Turns a batch of record positions into one parquet table (+ its statistics)."""

    def __init__(self, path: Path, spans, opts, counter):
        self.path, self.spans, self.opts, self.counter = path, spans, opts, counter
        self.rows = RowBuilder(opts)
        self.fd: int | None = None
        self.schema = None

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
            except (ValueError, KeyError, TypeError, AttributeError) as exc:
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


def batch_tasks(split: str, positions: list[int]) -> list[tuple[str, int, list[int]]]:
    """``(split, first position in the split, record positions)`` per parquet row group of ``BATCH_ROWS`` rows."""
    return [(split, start, positions[start : start + BATCH_ROWS]) for start in range(0, len(positions), BATCH_ROWS)]


_WORKER: dict[str, Any] = {}


def _adopt_builder(builder: BatchBuilder, part_dir: str) -> None:
    """Pool initializer: the forked worker keeps the parent's builder (inherited, not pickled)."""
    _WORKER.update(builder=builder, part_dir=part_dir)


def _build_in_worker(task: tuple[str, int, list[int]]) -> dict[str, Any]:
    """Build one batch; its table goes to an Arrow IPC file (one copy of the buffers, no pickling) whose path is
    returned in place of the table."""
    import pyarrow as pa

    result = _WORKER["builder"](task)
    table = result.pop("table")
    if table is not None:
        path = os.path.join(_WORKER["part_dir"], f"{task[0]}-{task[1]}.arrow")
        with pa.OSFile(path, "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
            writer.write_table(table)
        result["table_file"] = path
    return result


def _adopt_table(result: dict[str, Any]):
    """The table of a worker's result, memory-mapped from its IPC file (the file is unlinked at once: the mapping
    keeps its pages until the table is released)."""
    import pyarrow as pa

    path = result.pop("table_file", None)
    if path is None:
        return result.get("table")
    with pa.memory_map(path) as source:
        table = pa.ipc.open_file(source).read_all()
    os.unlink(path)
    return table


def own_share(workers: int) -> float:
    """The share of the batches this process builds itself when ``workers`` processes build (it also writes them
    all): balances ``share * B + W`` against ``(1 - share) * B / (workers - 1)`` with W = ``WRITE_COST`` * B."""
    return max(0.0, (1 - WRITE_COST * (workers - 1)) / workers)


def built_batches(tasks, builder: BatchBuilder, workers: int):
    """``(task, result)`` for every task, in task order; ``result`` is ``builder(task)``.

    With ``workers >= 2``, ``workers - 1`` forked processes build most batches while this one builds a share of
    them (:func:`own_share`) and writes them all; at most ``2 * workers`` batches are in flight, so memory stays
    bounded. A forked process hands its table back as an Arrow IPC file that this one memory-maps (in ``/dev/shm``
    where it has room, else the system's temporary folder). The output is the same as with one process."""
    context = fork_context() if workers >= 2 and len(tasks) >= 2 else None
    if context is None:
        for task in tasks:
            yield task, builder(task)
        return
    import shutil
    import tempfile
    from concurrent.futures import ProcessPoolExecutor

    share = own_share(workers)
    own = [int((k + 1) * share) > int(k * share) for k in range(len(tasks))]
    forked = iter([task for task, mine in zip(tasks, own, strict=True) if not mine])
    part_dir = tempfile.mkdtemp(prefix="tool-n1-parquet-", dir=_memory_folder())
    try:
        with ProcessPoolExecutor(
            workers - 1, mp_context=context, initializer=_adopt_builder, initargs=(builder, part_dir)
        ) as pool:
            pending = deque(pool.submit(_build_in_worker, task) for task in islice(forked, 2 * workers))
            for task, mine in zip(tasks, own, strict=True):
                if mine:
                    yield task, builder(task)
                    continue
                future = pending.popleft()
                following = next(forked, None)
                if following is not None:
                    pending.append(pool.submit(_build_in_worker, following))
                result = future.result()
                result["table"] = _adopt_table(result)
                yield task, result
    finally:
        shutil.rmtree(part_dir, ignore_errors=True)


def _memory_folder(room: int = SHM_ROOM) -> str | None:
    """``/dev/shm`` when it is writable with ``room`` bytes free (containers often mount only 64 MB there)."""
    import shutil

    try:
        if os.access("/dev/shm", os.W_OK) and shutil.disk_usage("/dev/shm").free >= room:
            return "/dev/shm"
    except OSError:
        pass
    return None


def write_splits(splits, writers, opts, stats, builder) -> None:
    """Write the records of each ``(split, positions)`` (in that order) to ``writers[split]``, one row group per
    ``BATCH_ROWS`` records, building the batches with ``opts.workers`` processes."""
    tasks = [task for split, positions in splits for task in batch_tasks(split, positions)]
    bar = progress(None, "parquet", opts.progress, total=sum(len(positions) for _, positions in splits))
    for (split, _, batch), result in built_batches(tasks, builder, opts.workers):
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
    add_run_flags(
        parser,
        "processes that build the parquet row groups: this one and N-1 forked ones (1: all here); "
        "the output is the same",
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
    train, test, dropped = split_positions(len(offsets), args.seed, args.train_ratio, args.split_remainder)
    output_dir = Path(args.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
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
    try:
        with (
            pq.ParquetWriter(output_dir / "train.parquet", schema) as train_writer,
            pq.ParquetWriter(output_dir / "test.parquet", schema) as test_writer,
        ):
            writers = {"train": train_writer, "test": test_writer}
            write_splits((("train", train), ("test", test)), writers, args, stats, builder)
    finally:
        builder.close()
    log.debug("%d of %d records took the reference path", stats["reference_rows"], len(offsets))
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
