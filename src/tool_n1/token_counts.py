"""Prompt lengths in tokens, measured one way everywhere (the data stage's filter, the TRL backend's filter).

The length of a chat prompt is what verl feeds the model: the tokenizer's chat template with the generation prompt,
encoded without adding special tokens again. The tokenizer is any Hugging Face tokenizer object (this module
imports nothing; the caller loads it).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any


def chat_prompt_lengths(tokenizer: Any, prompts: Iterable[Sequence[Mapping[str, Any]]]) -> list[int]:
    """Token count of each chat prompt (a list of ``{"role", "content"}`` messages), as verl measures it."""
    texts = [tokenizer.apply_chat_template(list(p), add_generation_prompt=True, tokenize=False) for p in prompts]
    if not texts:
        return []
    return [len(ids) for ids in tokenizer(texts, add_special_tokens=False)["input_ids"]]
