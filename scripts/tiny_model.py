"""Tiny offline models: a byte-level BPE ChatML tokenizer and a random 2-layer Qwen2, built in seconds.

The base model of the main job's ``tiny`` profile (``scripts/run_e2e.py``) and of the tests. No hub access. Needs
``tokenizers`` and ``transformers`` (the RL or SFT environment); ``torch`` for the model.

    .venv/rl/bin/python scripts/tiny_model.py OUT_DIR                # the model + tokenizer, from the shell
    from tiny_model import build_tiny_qwen2, build_tiny_tokenizer   # scripts/ on sys.path (tests/conftest.py)
    tokenizer = build_tiny_tokenizer(tmp_path / "model")      # saves a PreTrainedTokenizerFast there
    model = build_tiny_qwen2(tmp_path / "model")              # saves config + weights (+ the tokenizer) there

The tokenizer mimics Qwen2.5-Instruct where it matters: ChatML special tokens (``<|endoftext|>`` pad,
``<|im_start|>``, ``<|im_end|>`` eos), ``<tool_call>`` / ``</tool_call>`` as *non-special* added tokens (they survive
``skip_special_tokens=True``, as in Qwen's tokenizer), ``<think>`` as plain text, and a ChatML chat template with
``add_generation_prompt``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable
from pathlib import Path

CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
PLAIN_ADDED_TOKENS = ["<tool_call>", "</tool_call>"]
_CORPUS = [
    '<think>The user wants the weather.</think><tool_call>[{"name": "get_weather", "arguments": {"city": "Paris"}}]'
    "</tool_call>",
    "You are an expert in composing functions. Here is a list of functions in JSON format: <tools></tools>",
    "system user assistant tool name arguments parameters description required properties type string integer",
    "The quick brown fox jumps over the lazy dog. 0123456789 {}[]:,\"' ",
]


def build_tiny_tokenizer(path: str | Path | None = None, vocab_size: int = 400, corpus: Iterable[str] = ()):
    """A byte-level BPE tokenizer with a ChatML template, as ``transformers.PreTrainedTokenizerFast``.

    ``corpus``: more training text for the BPE merges (e.g. the prompts and answers a test fits a model on, so they
    take few tokens). Saved to ``path`` when given (``AutoTokenizer.from_pretrained(path)`` then loads it).
    """
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    backend.train_from_iterator([*(_CORPUS * 4), *corpus], trainer=trainer)
    backend.add_tokens([AddedToken(t, special=False, normalized=False) for t in PLAIN_ADDED_TOKENS])
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        bos_token=None,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        unk_token=None,
        additional_special_tokens=["<|im_start|>"],
        padding_side="left",
    )
    tokenizer.chat_template = CHATML_TEMPLATE
    if path is not None:
        Path(path).mkdir(parents=True, exist_ok=True)
        tokenizer.save_pretrained(str(path))
    return tokenizer


def build_tiny_qwen2(
    path: str | Path | None = None,
    tokenizer=None,
    *,
    num_layers: int = 2,
    hidden: int = 32,
    max_positions: int = 4096,
    seed=0,
):
    """A randomly initialised ``Qwen2ForCausalLM`` (about 30k parameters, fp32), matching ``tokenizer``'s vocabulary.

    Saved to ``path`` with its generation config (eos ``<|im_end|>``) and, when ``path`` is given, the tokenizer
    (built with :func:`build_tiny_tokenizer` if not passed), so ``path`` is a complete HF model folder.
    """
    import torch
    from transformers import GenerationConfig, Qwen2Config, Qwen2ForCausalLM

    if tokenizer is None:
        tokenizer = build_tiny_tokenizer()
    config = Qwen2Config(
        vocab_size=len(tokenizer),
        hidden_size=hidden,
        intermediate_size=2 * hidden,
        num_hidden_layers=num_layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=max_positions,
        tie_word_embeddings=False,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=None,
    )
    torch.manual_seed(seed)
    model = Qwen2ForCausalLM(config)
    model.generation_config = GenerationConfig(
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id, do_sample=True
    )
    if path is not None:
        Path(path).mkdir(parents=True, exist_ok=True)
        model.save_pretrained(str(path))
        tokenizer.save_pretrained(str(path))
    return model


TOY_TOOLS = [
    {
        "name": "get_weather",
        "description": "Get the weather of a city.",
        "parameters": {"type": "dict", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
    {"name": "get_time", "description": "Get the time.", "parameters": {"type": "dict", "properties": {}}},
]


def toy_rows(n: int = 4, split: str = "train", prompt_type: str = "qwen") -> list[dict]:
    """``n`` verl rows in the data pipeline's schema (data_source toolcall, chat prompt, rule ground truth)."""
    import json

    from tool_n1.prompts import training_system_prompt

    rows = []
    for i in range(n):
        city = ["Paris", "Rome", "Oslo", "Lima"][i % 4]
        calls = [{"name": "get_weather", "arguments": {"city": city}}]
        rows.append(
            {
                "data_source": "toolcall",
                "prompt": [
                    {"role": "system", "content": training_system_prompt(TOY_TOOLS)},
                    {"role": "user", "content": f"What is the weather in {city}?"},
                ],
                "ability": "toolcall",
                "reward_model": {"style": "rule", "ground_truth": json.dumps(calls)},
                "extra_info": {"split": split, "index": i, "prompt_type": prompt_type},
            }
        )
    return rows


def write_toy_parquet(path: str | Path, n: int = 4, split: str = "train", prompt_type: str = "qwen") -> Path:
    """Write :func:`toy_rows` as a parquet file that verl's ``RLHFDataset`` reads (needs pyarrow)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(toy_rows(n, split, prompt_type)), str(path))
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], allow_abbrev=False)
    parser.add_argument("output", type=Path, help="folder to write the model, its tokenizer and chat template into")
    args = parser.parse_args(argv)
    build_tiny_qwen2(args.output, build_tiny_tokenizer(args.output))
    print(f"tiny random Qwen2 + tokenizer written to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
