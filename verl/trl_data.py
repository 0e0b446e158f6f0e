"""Rows for the TRL backend: a verl parquet as a ``datasets.Dataset``; prompts over the length limit dropped."""

from __future__ import annotations

import logging

from trl_recipe import ConfigError

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
    texts = [tokenizer.apply_chat_template(p, add_generation_prompt=True, tokenize=False) for p in dataset["prompt"]]
    lengths = [len(ids) for ids in tokenizer(texts, add_special_tokens=False)["input_ids"]]
    keep = [i for i, length in enumerate(lengths) if length <= max_length]
    dropped = len(lengths) - len(keep)
    if dropped:
        log.info("%s: dropped %d of %d prompts longer than %d tokens", what, dropped, len(lengths), max_length)
    return dataset.select(keep) if dropped else dataset, lengths
