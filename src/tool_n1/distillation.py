"""Distillation samples: which unified records to distil, their keys and the teacher's system prompt.

Shared by the distiller (``data_process/distill_data.py``), its offline stand-in (``scripts/template_teacher.py``),
the SFT data stage (``LLaMA-Factory/data_process.py``) and the data-ablation selection of the verl data stage
(``data_process/record_selection.py``), so all of them name a sample by the same key.

A sample is one unified record (data pipeline JSONL) whose ``id`` is selected: query = its first human turn (as
the original), tools = its ``tools``, ground truth = its ``answer``. Its key, used to resume, is a unique-id field
of the record when there is one, else a hash of what is distilled (id, query, tools, answer), so it survives
reordering and unrelated new fields in the input.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from typing import Any

from tool_n1.prompts import DEFAULT_PREAMBLE, distillation_system_prompt, training_system_prompt

KEY_FIELDS = ("uid", "record_id", "sample_id", "source_row")


def canonical_sha(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def first_human_turn(record: dict[str, Any]) -> str | None:
    for turn in record.get("conversations") or []:
        if isinstance(turn, dict) and turn.get("from") == "human" and isinstance(turn.get("value"), str):
            return turn["value"]
    return None


def sample_fields(record: dict[str, Any]) -> tuple[str, list, list] | None:
    """(query, tools, answer) of a record that can be a sample, else ``None``."""
    query, tools, answer = first_human_turn(record), record.get("tools"), record.get("answer")
    if query is None or not isinstance(tools, list) or not isinstance(answer, list):
        return None
    return query, tools, answer


class SampleKeys:
    """The key of each sample, in file order: a unique-id field of the record when it has one (``uid``,
    ``record_id``, …), else the sha256 of its canonical id/query/tools/answer; a key seen again gets ``#2``, ``#3``…
    so duplicate records stay distinct samples."""

    def __init__(self):
        self.seen: Counter[str] = Counter()

    def __call__(self, record: dict[str, Any], query: str, tools: list, answer: list) -> str:
        field = next((f for f in KEY_FIELDS if isinstance(record.get(f), (str, int))), None)
        content = {"id": record.get("id"), "query": query, "tools": tools, "answer": answer}
        key = f"{field}:{record[field]}" if field else f"sha:{canonical_sha(content)[:20]}"
        self.seen[key] += 1
        return f"{key}#{self.seen[key]}" if self.seen[key] > 1 else key


def load_samples(path: str, ids: set[str] | None, limit: int | None) -> tuple[list[dict[str, Any]], Counter[str]]:
    """Selected samples (key, source id, query, tools, answer, …) and counts of the records skipped, by reason
    (keys: :class:`SampleKeys`)."""
    samples: list[dict[str, Any]] = []
    skipped: Counter[str] = Counter()
    keys = SampleKeys()
    with open(path, encoding="utf-8") as handle:
        for line_no, line in enumerate(handle, 1):
            if limit is not None and len(samples) >= limit:
                break
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except ValueError:
                skipped["not_json"] += 1
                continue
            if not isinstance(record, dict) or (ids is not None and record.get("id") not in ids):
                skipped["not_selected"] += 1
                continue
            fields = sample_fields(record)
            if fields is None:
                skipped["invalid_record"] += 1
                continue
            query, tools, answer = fields
            samples.append(
                {
                    "key": keys(record, *fields),
                    "source_id": record.get("id"),
                    "line": line_no,
                    "query": query,
                    "tools": tools,
                    "answer": answer,
                    "raw_system": record.get("raw_system"),
                }
            )
    return samples, skipped


def system_prompt(kind: str, sample: dict[str, Any]) -> str:
    if kind == "distill":
        return distillation_system_prompt(sample["tools"])
    preamble = sample["raw_system"] if isinstance(sample.get("raw_system"), str) and sample["raw_system"] else None
    return training_system_prompt(sample["tools"], preamble or DEFAULT_PREAMBLE)
