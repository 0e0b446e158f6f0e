"""Rows for the TRL backend: a verl parquet as a ``datasets.Dataset``; prompts over the length limit dropped."""

from __future__ import annotations

import logging

from trl_recipe import ConfigError

from tool_n1.token_counts import chat_prompt_lengths

log = logging.getLogger("tool_n1.train_trl")


def load_rows(path: str, limit: int | None):
    """verl parquet -> ``datasets.Dataset`` with the columns TRL and the reward need (no hub, no cache files)."""
    import pyarrow.parquet as pq
    from datasets import Dataset

    schema = pq.read_schema(path)
    missing = {"prompt", "reward_model"} - set(schema.names)
    if missing:
        raise ConfigError(f"{path}: not a verl parquet (missing column(s) {sorted(missing)})")
    columns = [c for c in ("prompt", "data_source", "reward_model", "extra_info") if c in schema.names]
    table = pq.read_table(path, columns=columns)
    if limit is not None and limit >= 0:
        table = table.slice(0, limit)
    return Dataset(table)


def filter_overlong(dataset, tokenizer, max_length: int, what: str):
    lengths = chat_prompt_lengths(tokenizer, dataset["prompt"])
    keep = [i for i, length in enumerate(lengths) if length <= max_length]
    dropped = len(lengths) - len(keep)
    if dropped:
        log.info("%s: dropped %d of %d prompts longer than %d tokens", what, dropped, len(lengths), max_length)
    return dataset.select(keep) if dropped else dataset, lengths
