"""The inference server behind the main job's evaluation (used by ``run_e2e.py``): ``vllm serve``, the command users
run on GPUs, here from vLLM's CPU build; ``eval/serve_hf.py`` (transformers ``generate``) where vLLM cannot serve.

    .venv/rl-vllm/bin/vllm serve MODEL --served-model-name NAME --port PORT --max-model-len 2048 --enforce-eager
    .venv/rl/bin/python eval/serve_hf.py --model MODEL --served-model-name NAME --port PORT

``auto`` picks vLLM when a ``vllm`` executable is in ``.venv/rl-vllm`` (CPU build) or ``.venv/rl`` (GPU host) and the
model's attention head size is one vLLM's CPU attention supports (32, 64, 80, 96, 112, 128, ...; a random tiny test
model has 16), else ``serve_hf.py``. On a CPU, vLLM gets ``VLLM_CPU_KVCACHE_SPACE`` (GiB of KV cache, default 2 here)
and ``OMP_NUM_THREADS`` (default: all cores) unless they are set already.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
VENV = REPO / ".venv"
VLLM_CPU_HEAD_SIZES = {32, 64, 80, 96, 112, 128, 160, 192, 224, 256}
ENGINES = ("auto", "vllm", "hf")


def vllm_executable() -> Path | None:
    for env in ("rl-vllm", "rl"):
        path = VENV / env / "bin" / "vllm"
        if path.exists():
            return path
    return None


def head_size(model: Path) -> int | None:
    config = json.loads((model / "config.json").read_text(encoding="utf-8"))
    config = config.get("text_config", config)
    if config.get("head_dim"):
        return int(config["head_dim"])
    heads = config.get("num_attention_heads")
    return int(config["hidden_size"]) // int(heads) if heads and config.get("hidden_size") else None


def choose_engine(requested: str, model: Path) -> tuple[str, str]:
    """(engine, reason)."""
    if requested == "hf":
        return "hf", "requested"
    exe = vllm_executable()
    size = head_size(model)
    if exe is None:
        reason = "no vllm executable in .venv/rl-vllm or .venv/rl (bash scripts/setup.sh rl-vllm)"
    elif size not in VLLM_CPU_HEAD_SIZES:
        reason = f"attention head size {size} is not one vLLM's CPU attention supports"
    else:
        return "vllm", f"{exe}"
    if requested == "vllm":
        raise SystemExit(f"--server vllm: {reason}")
    return "hf", reason


def server_command(
    engine: str, model: Path, name: str, port: int, max_tokens: int, max_model_len: int = 2048
) -> tuple[list[str], dict]:
    """The command line and extra environment of the server (``max_model_len``: vLLM's prompt + reply limit)."""
    if engine == "vllm":
        env = {
            "VLLM_CPU_KVCACHE_SPACE": os.environ.get("VLLM_CPU_KVCACHE_SPACE", "2"),
            "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", str(os.cpu_count() or 1)),
        }
        cmd = [
            str(vllm_executable()),
            "serve",
            str(model),
            "--served-model-name",
            name,
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--max-model-len",
            str(max_model_len),
            "--enforce-eager",
            "--seed",
            "0",
            "--generation-config",
            "vllm",
        ]
        return cmd, env
    cmd = [
        str(VENV / "rl" / "bin" / "python"),
        str(REPO / "eval" / "serve_hf.py"),
        "--model",
        str(model),
        "--port",
        str(port),
        "--served-model-name",
        name,
        "--max-tokens-cap",
        str(max_tokens),
        "--max-batch",
        "16",
    ]
    return cmd, {}


def wait_ready(process: subprocess.Popen, base_url: str, log: Path, timeout: float = 900.0) -> float:
    """Seconds until ``GET /v1/models`` answers; stops the run if the server exits or never answers."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if process.poll() is not None:
            raise SystemExit(f"the server exited with status {process.returncode} before answering; log: {log}")
        try:
            with urllib.request.urlopen(base_url + "/models", timeout=5) as reply:
                if reply.status == 200:
                    return time.monotonic() - started
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(2)
    raise SystemExit(f"the server did not answer within {timeout:.0f} s; log: {log}")


def stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=30)


@contextlib.contextmanager
def serve(
    requested: str, model: Path, name: str, max_tokens: int, log_path: Path, port: int, max_model_len: int = 2048
):
    """Start a server for ``model`` and yield ``(base_url, info)``; stopped on exit. With ``auto``, a vLLM server
    that exits or does not answer within 10 minutes is replaced by ``serve_hf.py`` (said in the log and in
    ``info["fallback"]``); with ``vllm`` that stops the run."""
    engine, reason = choose_engine(requested, model)
    info: dict = {"engine": engine, "reason": reason}
    base_url = f"http://127.0.0.1:{port}/v1"
    started = time.monotonic()
    with log_path.open("w") as log:
        while True:
            cmd, extra = server_command(engine, model, name, port, max_tokens, max_model_len)
            print(f"  serving {name} with {engine} ({reason})", flush=True)
            env = {**os.environ, "HF_HUB_OFFLINE": "1", **extra}
            process = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
            try:
                info["startup_s"] = round(wait_ready(process, base_url, log_path, 600.0), 1)
                break
            except SystemExit as exc:
                stop(process)
                if engine != "vllm" or requested != "auto":
                    raise
                print(f"  vLLM did not come up ({exc}); falling back to eval/serve_hf.py", flush=True)
                info["fallback"] = str(exc)
                engine, reason = "hf", "fallback after vLLM failed to start"
                info["engine"] = engine
        try:
            yield base_url, info
        finally:
            stop(process)
            info["total_s"] = round(time.monotonic() - started, 1)
