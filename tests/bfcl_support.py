"""Shared set-up for the BFCL tests: one ``BFCL_PROJECT_ROOT`` per test process (the unsatisfiable ids and the
Table-2 counts live in ``eval/bfcl_synthetic.py``, which the benchmark uses too).

``bfcl_eval`` fixes its project root when first imported, so every BFCL test uses the same temporary root and its
own result/score folders below it. Nothing here imports ``bfcl_eval`` at module level (the file is collected in
every environment).
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

_ROOT: Path | None = None


def bfcl_root() -> Path:
    """The process-wide ``BFCL_PROJECT_ROOT`` (a temporary folder), set before ``bfcl_eval`` is imported."""
    global _ROOT
    if _ROOT is None:
        loaded = sys.modules.get("bfcl_eval.constants.eval_config")
        if loaded is not None:
            _ROOT = Path(loaded.PROJECT_ROOT).resolve()
        else:
            _ROOT = Path(tempfile.mkdtemp(prefix="bfcl-root-")).resolve()
            atexit.register(shutil.rmtree, _ROOT, ignore_errors=True)
            os.environ["BFCL_PROJECT_ROOT"] = str(_ROOT)
    return _ROOT


def evaluate_argv(root: Path, key: str, work: Path, categories: str) -> list[str]:
    """``run_bfcl.py evaluate`` arguments: a partial evaluation of ``categories``, outputs under ``work``."""
    return [
        "evaluate",
        "--project-root",
        str(root),
        "--model",
        key,
        "--partial-eval",
        "--result-dir",
        str(work / "result"),
        "--score-dir",
        str(work / "score"),
        "--test-category",
        categories,
    ]


CHATML = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def tiny_tokenizer_dir(path):
    """A byte-level BPE trained on a few lines + ChatML template + a Qwen2-style config (no download)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    trainer = trainers.BpeTrainer(
        vocab_size=400, special_tokens=specials, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    tok.train_from_iterator(['<tool_call>[{"name": "f", "arguments": {}}]</tool_call>', "Help me find the"], trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|endoftext|>")
    fast.chat_template = CHATML
    fast.save_pretrained(path)
    config = {
        "architectures": ["Qwen2ForCausalLM"],
        "model_type": "qwen2",
        "max_position_embeddings": 32768,
        "vocab_size": 400,
        "hidden_size": 8,
        "num_hidden_layers": 1,
        "num_attention_heads": 1,
        "num_key_value_heads": 1,
        "intermediate_size": 8,
    }
    (path / "config.json").write_text(json.dumps(config))
    return path
