"""``bash verl/train_qwen.sh --cpu +ablation=multiturn``: 2 GRPO steps of the real ``main_ppo`` with executed tools.

Data: the seeded BFCL ``multi_turn_base`` split (prompts listing only the ground truth's functions,
``--tool-list ground_truth``, to keep a CPU run short), narrowed to the entries whose first user turn is
``add_to_watchlist(stock='ZETA')`` (4 in the train half, 2 held out). A tiny Qwen2 is fit for about a minute (one
thread) to open with that call or with the same call for AAPL (a coin flip at the stock name), and to close the turn
with a short answer after the tool result. Both calls execute; only ZETA makes the first turn right (so a GRPO
group's rewards differ), and only AAPL changes the environment (ZETA is already on most of these watchlists).
Validation samples 4 rollouts per entry, so both branches show up there too. The run goes through vLLM's CPU build,
verl's tool agent loop with our BFCL environment, the multi-turn reward and FSDP updates. Asserted from verl's
console metrics: the actor's gradient norm is non-zero at both steps, and the validation rollouts executed calls that
changed the environment's state (the agent loop's record, reported by the reward as ``calls_executed`` and
``state_changed``). Hard timeout 1800 s.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO
from tool_n1.verl_console import parse_step_metrics

pytestmark = pytest.mark.vllm_env

TIMEOUT_S = 1800
FIT_STEPS = 600
FIRST_TURN = [{"name": "add_to_watchlist", "arguments": {"stock": "ZETA"}}]
RIGHT = "<think>go</think><tool_call>" + json.dumps(FIRST_TURN) + "</tool_call>"
WRONG = RIGHT.replace("ZETA", "AAPL")
DONE = "<think>done</think>Added."


def narrow_split(full: Path, out: Path) -> dict[str, int]:
    """The split's rows whose first ground-truth turn is :data:`FIRST_TURN`, as train/test parquet in ``out``."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    out.mkdir(parents=True)
    counts = {}
    for name in ("train.parquet", "test.parquet"):
        rows = pq.read_table(str(full / name)).to_pylist()
        rows = [r for r in rows if json.loads(r["reward_model"]["ground_truth"])[0] == FIRST_TURN]
        pq.write_table(pa.Table.from_pylist(rows), out / name)
        counts[name] = len(rows)
    return counts


def fit_opening_policy(
    data_dir: Path, model_dir: Path, steps: int = FIT_STEPS, lr: float = 1e-3, seed: int = 0, hidden: int = 128
) -> float:
    """A tiny Qwen2 (hidden 128: head_dim 32, vLLM's CPU minimum): RIGHT or WRONG first, DONE after the tool
    result. Also used by the TRL backend's multi-turn test (no vLLM there, so a smaller ``hidden``)."""
    import pyarrow.parquet as pq
    import torch
    from tiny_model import build_tiny_qwen2, build_tiny_tokenizer

    rows = pq.read_table(str(data_dir / "train.parquet")).to_pylist()
    rows += pq.read_table(str(data_dir / "test.parquet")).to_pylist()
    rendered = ["".join(f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n" for m in r["prompt"]) for r in rows]
    tokenizer = build_tiny_tokenizer(model_dir, vocab_size=3000, corpus=[*rendered, *([RIGHT, WRONG, DONE] * 8)])
    model = build_tiny_qwen2(None, tokenizer, hidden=hidden, max_positions=16384, seed=seed)

    def ids(messages):
        return list(tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_dict=True)["input_ids"])

    def target(text):
        return tokenizer(text, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]

    from tool_n1_multiturn.environment import BfclEnvironment

    examples = []
    for row in rows:
        messages = list(row["prompt"])
        spec = json.loads(row["extra_info"]["bfcl"])
        for reply in (RIGHT, WRONG):
            examples.append((ids(messages), target(reply)))
            # the answer after the environment's real result (a made-up result teaches the wrong context)
            env = BfclEnvironment(spec["initial_config"], spec["involved_classes"])
            call = json.loads(reply[reply.index("[") : reply.rindex("]") + 1])[0]
            result = env.execute(call["name"], call["arguments"])
            after = [*messages, {"role": "assistant", "content": reply}, {"role": "tool", "content": result}]
            examples.append((ids(after), target(DONE)))
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr)
    generator = random.Random(seed)
    model.train()
    loss = torch.tensor(0.0)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a model this small runs ~20x faster on one thread than on contended cores
    try:
        for _ in range(steps):
            prompt, answer = generator.choice(examples)
            labels = torch.tensor([[-100] * len(prompt) + answer])
            loss = model(input_ids=torch.tensor([prompt + answer]), labels=labels).loss
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    finally:
        torch.set_num_threads(threads)
    model.save_pretrained(str(model_dir))
    return float(loss.detach())


def test_two_grpo_steps_with_executed_tools(tmp_path):
    python = sys.executable
    env = {**os.environ, "BFCL_PROJECT_ROOT": str(tmp_path / "bfcl"), "PYTHONPATH": str(REPO / "src")}
    split = subprocess.run(
        [python, str(REPO / "data_process" / "bfcl_multiturn_split.py"), "--output-dir", str(tmp_path / "split"),
         "--tool-list", "ground_truth"],
        capture_output=True, text=True, timeout=600, env=env,
    )  # fmt: skip
    assert split.returncode == 0, split.stderr[-3000:]
    data_dir = tmp_path / "data"
    assert narrow_split(tmp_path / "split", data_dir) == {"train.parquet": 4, "test.parquet": 2}
    final_loss = fit_opening_policy(data_dir, tmp_path / "model")
    assert final_loss < 0.3, final_loss
    run_env = {
        **env,
        "PYTHON": python,
        "MODEL_PATH": str(tmp_path / "model"),
        "DATA_DIR": str(data_dir),
        "OUTPUT_DIR": str(tmp_path / "run"),
        "CKPT_DIR": str(tmp_path / "ckpt"),
        "RAY_DEDUP_LOGS": "0",
    }
    run_env.pop("RAY_ADDRESS", None)
    overrides = [
        "+ablation=multiturn",
        # CPU sizes: short prompts (ground-truth functions only), a short trajectory, 3 replies at most
        "data.max_prompt_length=2048",
        "data.max_response_length=512",
        "actor_rollout_ref.rollout.max_model_len=4096",
        "actor_rollout_ref.rollout.multi_turn.max_assistant_turns=3",
        # 4 rollouts per entry: a group whose coin flips all agree (no advantage) becomes unlikely (1/8 per group)
        "actor_rollout_ref.rollout.n=4",
        "actor_rollout_ref.rollout.val_kwargs.do_sample=true",
        "actor_rollout_ref.rollout.val_kwargs.n=4",
        "actor_rollout_ref.rollout.val_kwargs.temperature=0.7",
        "trainer.save_freq=-1",
    ]
    command = ["timeout", "-k", "30", str(TIMEOUT_S), "bash", str(REPO / "verl" / "train_qwen.sh"), "--cpu"]
    run = subprocess.run([*command, *overrides], capture_output=True, text=True, env=run_env, timeout=TIMEOUT_S + 120)
    log = run.stdout + run.stderr
    (tmp_path / "train_qwen.log").write_text(log)
    assert run.returncode == 0, log[-6000:]
    steps = parse_step_metrics(log)
    assert {1, 2} <= set(steps), sorted(steps)
    for step in (1, 2):
        assert steps[step]["actor/grad_norm"] > 0.0, steps[step]
    validation = steps[2]
    executed = [v for k, v in validation.items() if k.startswith("val-aux/bfcl_multi_turn/calls_executed/mean")]
    changed = [v for k, v in validation.items() if k.startswith("val-aux/bfcl_multi_turn/state_changed/mean")]
    assert executed and max(executed) > 0.0, validation
    assert changed and max(changed) > 0.0, validation
