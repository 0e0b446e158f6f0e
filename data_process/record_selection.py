"""Which unified records a verl parquet holds, for the data ablations (not an entry point; ``to_verl_parquet.py``).

* ``--keys FILE [--keys-subset NAME]``: only the records whose distillation key (``tool_n1.distillation.SampleKeys``,
  the key the SFT data uses) is listed, chosen before the split. FILE is a JSON list of keys or the SFT manifest
  ``tool_sft_manifest.json`` of ``LLaMA-Factory/data_process.py``, whose ``subsets`` hold the keys:
  ``tool_sft_reason_100`` (the whole distilled subset: paper Table 3 "RL 100 %") and ``rl_rest_50`` (the half not
  used for SFT: "RL 50 %" and "Reason-SFT + RL").
* ``--train-sources toolace|xlam``: the training split keeps only records of these sources (the ``source`` field
  stage 1 writes), the test split is left whole so validation stays comparable (paper Table 5).

Records are read by byte offset and decoded once more for this, so a selection costs a pass over the file.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path
from typing import Any

from tool_n1.distillation import SampleKeys, sample_fields


class SelectionError(ValueError):
    """A keys file that cannot be used; the message says why."""


def load_keys(path: str, subset: str | None) -> list[str]:
    """The keys listed in ``path``: a JSON list of strings, or an SFT manifest with ``subsets[subset]["keys"]``."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise SelectionError(f"--keys {path}: cannot read it as JSON ({exc})") from None
    if isinstance(data, dict) and "subsets" in data:
        subsets = data["subsets"]
        if subset not in subsets:
            raise SelectionError(f"--keys {path} is an SFT manifest: pass --keys-subset, one of {sorted(subsets)}")
        data = subsets[subset].get("keys")
    elif subset is not None:
        raise SelectionError(f"--keys-subset {subset!r}: {path} is not an SFT manifest (no 'subsets')")
    if not isinstance(data, list) or not all(isinstance(key, str) for key in data):
        raise SelectionError(f"--keys {path}: expected a JSON list of key strings")
    return data


def _records(path: Path, spans: tuple[list[int], list[int]], positions):
    """``(position, record or None)`` for each position, read by byte offset."""
    offsets, lengths = spans
    fd = os.open(path, os.O_RDONLY)
    try:
        for position in positions:
            try:
                record = json.loads(os.pread(fd, lengths[position], offsets[position]))
            except ValueError:
                record = None
            yield position, record if isinstance(record, dict) else None
    finally:
        os.close(fd)


def positions_with_keys(path: Path, spans, wanted: list[str]) -> tuple[list[int], list[str]]:
    """Positions (file order) of the records whose key is in ``wanted``, and the wanted keys not found."""
    keys, remaining, selected = SampleKeys(), set(wanted), []
    for position, record in _records(path, spans, range(len(spans[0]))):
        fields = sample_fields(record) if record is not None else None
        key = keys(record, *fields) if fields is not None else None
        if key in remaining:
            remaining.discard(key)
            selected.append(position)
    return selected, [key for key in wanted if key in remaining]


def keep_sources(path: Path, spans, positions: list[int], sources: list[str]) -> tuple[list[int], dict[str, Any]]:
    """The positions whose record's ``source`` is one of ``sources`` (order kept), and the counts left out."""
    kept, left_out = [], Counter()
    for position, record in _records(path, spans, positions):
        source = record.get("source") if record is not None else None
        if source in sources:
            kept.append(position)
        else:
            left_out[str(source)] += 1
    return kept, dict(left_out)
