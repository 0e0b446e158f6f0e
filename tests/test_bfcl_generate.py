"""End to end on CPU: ``run_bfcl.py generate`` against the OpenAI stub on 127.0.0.1 (completions endpoint) with a
tokenizer folder built here, then ``evaluate --partial-eval`` on what came back."""

from __future__ import annotations

import json
import re

import pytest

from tests.bfcl_support import bfcl_root, evaluate_argv
from tool_n1.openai_stub import Action, OpenAIStub

pytestmark = pytest.mark.eval_env

IDS = [
    "simple_python_0",
    "simple_python_7",
    "simple_java_3",
    "simple_javascript_2",
    "parallel_4",
    "live_multiple_10-4-2",
    "live_simple_0-0-0",
    "irrelevance_0",
    "irrelevance_5",
]
USER = re.compile(r"<\|im_start\|>user\n(.*?)<\|im_end\|>", re.DOTALL)
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


def test_generate_against_stub_then_evaluate(tmp_path):
    root = bfcl_root()
    import bfcl_synthetic as syn
    import run_bfcl
    from bfcl_eval.utils import load_dataset_entry, load_ground_truth_entry

    replies = {}
    for category in {i.rsplit("_", 1)[0] for i in IDS}:
        answers = {} if category in syn.RELEVANCE else {a["id"]: a for a in load_ground_truth_entry(category)}
        for entry in load_dataset_entry(category, include_prereq=False, include_language_specific_hint=False):
            if entry["id"] in IDS:
                user = [m["content"] for m in entry["question"][0] if m["role"] == "user"][-1]
                calls = syn.render_calls(answers[entry["id"]], entry["function"], category) if answers else []
                replies[user.strip()] = syn.render_reply(calls)
    seen = []

    def responder(body):
        seen.append(body)
        users = USER.findall(body.get("prompt", ""))
        return Action.ok(replies.get(users[-1].strip(), syn.NO_CALL) if users else "garbage")

    model_dir = tiny_tokenizer_dir(tmp_path / "tiny-model")
    key = "tool-n1/e2e-stub"
    with OpenAIStub(responder=responder) as stub:
        run_bfcl.main(
            [
                "generate",
                "--project-root",
                str(root),
                "--model",
                key,
                "--base-url",
                stub.base_url,
                "--local-model-path",
                str(model_dir),
                "--ids",
                ",".join(IDS),
                "--num-threads",
                "4",
                "--result-dir",
                str(tmp_path / "result"),
                "--wait",
                "10",
                "--served-model",
                "e2e-stub",
            ]
        )
    assert len(seen) == len(IDS)
    assert all(  # the served name, as vllm serve --served-model-name expects, not the tokenizer's path
        body["model"] == "e2e-stub" and body["prompt"].startswith("<|im_start|>system\n") for body in seen
    )
    assert all("<|im_start|>user\n" in body["prompt"] and body["max_tokens"] <= 4096 for body in seen)
    folder = tmp_path / "result" / "tool-n1_e2e-stub"
    sidecar = json.loads((folder / run_bfcl.SIDECAR).read_text())
    assert sidecar["options"]["prompt"] == "train" and sidecar["options"]["block"] == "last"
    results = [json.loads(line) for path in folder.rglob("*_result.json") for line in path.read_text().splitlines()]
    assert sorted(r["id"] for r in results) == sorted(IDS)
    assert all(isinstance(r["result"], str) and "<tool_call>" in r["result"] for r in results)
    report = run_bfcl.run(evaluate_argv(root, key, tmp_path, ",".join(sorted({i.rsplit("_", 1)[0] for i in IDS}))))
    assert {c: v["accuracy"] for c, v in report["categories"].items()} == dict.fromkeys(
        {i.rsplit("_", 1)[0] for i in IDS}, 100.0
    )


def test_generate_fails_fast_without_server(tmp_path):
    bfcl_root()
    import run_bfcl

    with pytest.raises(SystemExit, match="no OpenAI-compatible server"):
        run_bfcl.wait_for_server("http://127.0.0.1:9/v1", timeout=1.0)
