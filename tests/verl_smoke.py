"""The 2-step ``main_ppo`` smoke shared by the CPU test (vLLM's CPU build) and the GPU test (CUDA + vLLM).

    data_process.py + to_verl_parquet.py on the shared fixtures  ->  train.parquet / test.parquet
    fit_tiny_policy: a tiny Qwen2 (head_dim 32, vLLM's CPU attention minimum) fit for a few seconds on the
        training rows, half of the time to the right call and half to a wrong one, so a GRPO group's rewards differ
    run_train_qwen: bash verl/train_qwen.sh [--cpu] with a hard timeout  ->  verl's console metrics per step
    verl/model_convert.py on the last checkpoint  ->  an HF folder that loads and generates

Heavy imports (torch, transformers, pyarrow) happen inside the functions: pytest imports this module for doctests.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO

# The smoke scores with the paper's fine-grained reward (Table 4 "partial_think": 0.2 * think tags + 0.8 * exact call),
# and the tiny policy answers with or without think tags at random: a GRPO group's rewards then differ (0.2 vs 0)
# without a model that knows the calls.
WITH_THINK = "<think>call it</think><tool_call>[]</tool_call>"
WITHOUT_THINK = "<tool_call>[]</tool_call>"


def pipeline_parquet(fixtures: Path, out: Path) -> Path:
    """The data pipeline's real entry points on the shared ToolACE / xLAM fixture rows; returns the parquet folder."""
    inputs = [
        "--toolace",
        str(fixtures / "toolace" / "hub_format_row2.json"),
        str(fixtures / "toolace" / "sharegpt_func_fixed_rows_0-49.json"),
        "--xlam",
        str(fixtures / "xlam" / "distilabel_sample_rows.json"),
        str(fixtures / "xlam" / "audited_rows.json"),
    ]
    stage = REPO / "data_process"
    quiet = ["--no-progress", "--log-level", "ERROR"]
    for argv in (
        [str(stage / "data_process.py"), *inputs, "--output-dir", str(out / "unified"), *quiet],
        [
            str(stage / "to_verl_parquet.py"),
            "--input",
            str(out / "unified" / "unified.jsonl"),
            "--output-dir",
            str(out / "verl"),
            *quiet,
        ],
    ):
        run = subprocess.run([sys.executable, *argv], capture_output=True, text=True, timeout=600, cwd=stage)
        assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    return out / "verl"


def _rows(parquet: Path) -> list[dict]:
    import pyarrow.parquet as pq

    return pq.read_table(str(parquet)).to_pylist()


def fit_tiny_policy(model_dir: Path, data_dir: Path, steps: int = 160, seed: int = 0) -> dict:
    """A tiny Qwen2 (2 layers, hidden 128, head_dim 32) answering every prompt with or without think tags, at random.

    The tokenizer's merges are learned on the prompts (so they take few tokens); the model is trained with teacher
    forcing on real prompts -> :data:`WITH_THINK` (3 steps in 4) and -> :data:`WITHOUT_THINK`, so its first answer
    token is a biased coin flip. Returns {"rows", "steps", "final_loss", "parameters", "prompt_tokens_max"}.
    """
    import random

    import torch
    from tiny_model import build_tiny_qwen2, build_tiny_tokenizer

    rows = _rows(data_dir / "train.parquet") + _rows(data_dir / "test.parquet")
    rendered = ["".join(f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n" for m in row["prompt"]) for row in rows]
    tokenizer = build_tiny_tokenizer(model_dir, vocab_size=1000, corpus=[*rendered, WITH_THINK, WITHOUT_THINK])
    model = build_tiny_qwen2(model_dir, tokenizer, num_layers=2, hidden=128, seed=seed)
    prompts = [
        list(tokenizer.apply_chat_template(row["prompt"], add_generation_prompt=True, return_dict=True)["input_ids"])
        for row in rows
    ]
    targets = [
        tokenizer(text, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
        for text in (WITH_THINK, WITHOUT_THINK)
    ]
    torch.manual_seed(seed)
    generator = random.Random(seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    model.train()
    loss = torch.tensor(0.0)
    for step in range(steps):
        # 3 of 4 steps teach the think answer: at 1:1 the fitted policy thinks about 1 time in 4 under HF sampling and
        # less in vLLM's bf16 rollout; more think targets keep both answers frequent there
        prompt, target = generator.choice(prompts), targets[0 if step % 4 else 1]
        ids = torch.tensor([prompt + target])
        labels = torch.tensor([[-100] * len(prompt) + target])
        loss = model(input_ids=ids, labels=labels).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    model.save_pretrained(str(model_dir))
    return {
        "rows": len(rows),
        "steps": steps,
        "final_loss": float(loss),
        "parameters": sum(p.numel() for p in model.parameters()),
        "prompt_tokens_max": max(map(len, prompts)),
    }


def run_train_qwen(
    work: Path, model_dir: Path, data_dir: Path, *, cpu: bool, overrides: list[str], timeout_s: int, python: str
) -> tuple[subprocess.CompletedProcess, str]:
    """``bash verl/train_qwen.sh [--cpu] OVERRIDES`` under ``timeout`` (a hang fails); returns (process, full log)."""
    env = {
        **os.environ,
        "PYTHON": python,
        "MODEL_PATH": str(model_dir),
        "DATA_DIR": str(data_dir),
        "OUTPUT_DIR": str(work / "run"),
        "CKPT_DIR": str(work / "ckpt"),
        "N_GPUS_PER_NODE": "1",
        "ROLLOUT_TP": "1",
        "RAY_DEDUP_LOGS": "0",
    }
    env.pop("RAY_ADDRESS", None)
    command = ["timeout", "-k", "30", str(timeout_s), "bash", str(REPO / "verl" / "train_qwen.sh")]
    if cpu:
        command.append("--cpu")
    run = subprocess.run([*command, *overrides], capture_output=True, text=True, env=env, timeout=timeout_s + 120)
    log = run.stdout + run.stderr
    (work / "train_qwen.log").write_text(log)
    return run, log


def convert_and_generate(checkpoints: Path, target: Path, python: str) -> str:
    """verl/model_convert.py on the latest checkpoint, then the converted folder loads and generates."""
    convert = subprocess.run(
        [
            python,
            str(REPO / "verl" / "model_convert.py"),
            "--local_dir",
            str(checkpoints),
            "--target_dir",
            str(target),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert convert.returncode == 0 and "RESULT: OK" in convert.stdout, convert.stdout[-3000:] + convert.stderr[-3000:]
    code = (
        "import sys, json, torch\n"
        "from transformers import AutoModelForCausalLM, AutoTokenizer\n"
        "tok = AutoTokenizer.from_pretrained(sys.argv[1]); model = AutoModelForCausalLM.from_pretrained(sys.argv[1])\n"
        "ids = tok.apply_chat_template([{'role': 'user', 'content': 'Weather in Paris?'}], add_generation_prompt=True,"
        " return_tensors='pt', return_dict=True)\n"
        "out = model.generate(**ids, max_new_tokens=16, do_sample=False)\n"
        "new = out[0, ids['input_ids'].shape[1]:]\n"
        "print(json.dumps({'new_tokens': int(new.numel()), 'text': tok.decode(new)}))\n"
    )
    generate = subprocess.run([python, "-c", code, str(target)], capture_output=True, text=True, timeout=300)
    assert generate.returncode == 0, generate.stderr[-3000:]
    return generate.stdout.strip().splitlines()[-1]


def reward_keys(metrics: dict[str, float]) -> list[str]:
    return sorted(key for key in metrics if key.startswith("val-aux/toolcall/"))
