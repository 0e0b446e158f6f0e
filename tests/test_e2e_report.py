"""scripts/e2e_report.py and scripts/e2e_serve.py on synthetic run folders (no model, no server): the table's
intervals, the paired test's verdict, unanswered items kept apart, and the evaluation server's choice."""

from __future__ import annotations

import importlib.util
import json
import sys

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.rl_env  # matplotlib for the curves


def load(name):
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, REPO / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def write_scores(root, model, hits, n=200, unanswered=()):
    folder = root / "eval" / model / "heldout"
    folder.mkdir(parents=True)
    lines = []
    for i in range(n):
        item = {"id": f"test-{i}", "group": "xlam", "answered": i not in unanswered}
        if item["answered"]:
            match = float(i in hits)
            item.update(score=match, format_ok=1.0, call_parsed=1.0, calls_match=match)
        lines.append(json.dumps(item))
    (folder / "scores.jsonl").write_text("\n".join(lines) + "\n")


def test_report_states_significance_both_ways(tmp_path):
    report = load("e2e_report")
    write_scores(tmp_path, "base", hits=set())
    write_scores(tmp_path, "sft", hits=set(range(60)))
    write_scores(tmp_path, "sft_grpo", hits=set(range(3, 66)), unanswered={199})  # lost 3, gained 6: noise
    write_scores(tmp_path, "base_grpo", hits=set(range(20)))  # gained 20, lost 0
    (tmp_path / "grpo").mkdir()
    rows = [
        {
            "step": s,
            "reward_mean": 0.1 * s,
            "format_rate": 1.0,
            "exact_match_rate": 0.3,
            "kl": 0.001 * s,
            "frac_reward_zero_std": 0.5,
            "completion_length": 60,
        }
        for s in (1, 2, 3)
    ]
    (tmp_path / "grpo" / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    text = report.write(tmp_path, "default", {"sft": 100.0, "grpo": 200.0}).read_text()
    assert "| SFT (LoRA, merged) | 200 | 0 | 0.300 [0.241, 0.367] |" in text
    assert "| SFT + GRPO | 200 | 1 | " in text  # the unanswered item is counted apart, not as wrong
    comparisons = json.loads((tmp_path / "comparisons.json").read_text())
    noisy = comparisons["sft_grpo_vs_sft"]
    assert (noisy["n"], noisy["b"], noisy["c"]) == (199, 3, 6) and noisy["p_value"] > 0.05
    clear = comparisons["base_grpo_vs_base"]
    assert (clear["b"], clear["c"]) == (0, 20) and clear["p_value"] < 1e-5
    assert "**SFT + GRPO vs SFT (LoRA, merged)**" in text and "**not significant**" in text
    assert "**GRPO from the base model vs base model**" in text and "**is significant**" in text
    assert (tmp_path / "grpo_curves.png").stat().st_size > 1000


def test_report_shows_the_robustness_slice_with_spread(tmp_path):
    report = load("e2e_report")
    write_scores(tmp_path, "sft", hits=set(range(60)))

    def stat(values):
        mean = sum(values) / len(values)
        std = (sum((v - mean) ** 2 for v in values) / (len(values) - 1)) ** 0.5
        return {"mean": mean, "std": std, "min": min(values), "max": max(values), "spread": max(values) - min(values)}

    folder = tmp_path / "robustness" / "sft"
    folder.mkdir(parents=True)
    seeds = {"kind": "seeds", "runs": {"seed-1": {}, "seed-2": {}}, "stats": {"abstention": stat([50.0, 75.0])}}
    formats = {"kind": "formats", "runs": {"fmt-train": {}, "fmt-bfcl": {}}, "stats": {"non_live": stat([25.0, 0.0])}}
    (folder / "seeds.json").write_text(json.dumps(seeds))
    (folder / "formats.json").write_text(json.dumps(formats))
    text = report.write(tmp_path, "default", {}).read_text()
    assert "| SFT (LoRA, merged) | 2 sampled runs | - | - | - | 62.50 ± 17.68 | - |" in text
    assert "| SFT (LoRA, merged) | formats fmt-bfcl, fmt-train | 12.50 ± 17.68 (spread 25.00) | - |" in text


def test_server_choice(tmp_path, monkeypatch):
    serve = load("e2e_serve")
    model = tmp_path / "m"
    model.mkdir()
    (model / "config.json").write_text(json.dumps({"hidden_size": 64, "num_attention_heads": 4}))
    assert serve.head_size(model) == 16
    assert serve.choose_engine("hf", model) == ("hf", "requested")
    monkeypatch.setattr(serve, "vllm_executable", lambda: tmp_path / "vllm")
    engine, reason = serve.choose_engine("auto", model)
    assert engine == "hf" and "head size 16" in reason
    with pytest.raises(SystemExit, match="head size 16"):
        serve.choose_engine("vllm", model)
    (model / "config.json").write_text(json.dumps({"hidden_size": 576, "num_attention_heads": 9, "head_dim": 64}))
    assert serve.choose_engine("auto", model)[0] == "vllm"
    cmd, env = serve.server_command("vllm", model, "sft", 8123, 96)
    assert cmd[1:3] == ["serve", str(model)] and "--served-model-name" in cmd and "VLLM_CPU_KVCACHE_SPACE" in env
    monkeypatch.setattr(serve, "vllm_executable", lambda: None)
    assert serve.choose_engine("auto", model)[0] == "hf"
