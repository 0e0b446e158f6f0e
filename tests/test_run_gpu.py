"""scripts/run_gpu.sh, the GPU counterpart of the main job: --dry-run prints every stage's command and runs none."""

from __future__ import annotations

import os
import subprocess

from tests.conftest import REPO

SCRIPT = REPO / "scripts" / "run_gpu.sh"


def dry_run(tmp_path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("TOOLACE", "XLAM", "APIBANK", "ACEBENCH")}
    env["RUN_DIR"] = str(tmp_path / "run")
    return subprocess.run(
        ["bash", str(SCRIPT), "--dry-run", *args], capture_output=True, text=True, env=env, timeout=60, check=False
    )


def test_dry_run_prints_every_stage_in_order_and_runs_nothing(tmp_path):
    result = dry_run(tmp_path, "--", "+ablation=qwen2.5_14b")
    assert result.returncode == 0, result.stderr
    commands = [line for line in result.stdout.splitlines() if line.startswith("+ ")]
    expected = [
        "data_process/data_process.py --toolace <TOOLACE> --xlam <XLAM>",
        "data_process/to_verl_parquet.py --input",
        "verl/train_qwen.sh +ablation=qwen2.5_14b",
        "verl/model_convert.py --checkpoint",
        "vllm serve",
        "run_bfcl.py generate",
        "run_bfcl.py evaluate",
        "eval/apibank.py --data <APIBANK>",
        "eval/acebench.py --data <ACEBENCH>",
        "run_bfcl.py report",
    ]
    positions = [next(i for i, line in enumerate(commands) if part in line) for part in expected]
    assert positions == sorted(positions), commands
    serve = next(line for line in commands if "vllm serve" in line)
    for flag in (
        "--tool-parser-plugin",
        "--tool-call-parser tool_n1",
        "--reasoning-parser tool_n1",
        "--chat-template",
    ):
        assert flag in serve
    assert not (tmp_path / "run").exists(), "a dry run writes nothing"


def test_from_and_only_select_stages_and_bad_arguments_fail(tmp_path):
    later = dry_run(tmp_path, "--from", "convert").stdout
    assert "data_process.py" not in later and "train_qwen.sh" not in later and "model_convert.py" in later
    only = dry_run(tmp_path, "--only", "apibank").stdout
    assert "apibank.py" in only and "vllm serve" in only and "acebench.py" not in only
    assert dry_run(tmp_path, "--from", "nope").returncode == 2
    assert dry_run(tmp_path, "--bogus").returncode == 2
    help_text = subprocess.run(["bash", str(SCRIPT), "--help"], capture_output=True, text=True, check=True).stdout
    for stage in ("data", "train", "convert", "serve", "bfcl", "apibank", "acebench", "report"):
        assert f"  {stage} " in help_text
