"""``run_bfcl.py`` against awkward servers and results: an API key reaches every request bfcl makes, waits are
bounded and paced, a one-item run evaluates, failed-request entries are counted apart (never scored as replies)."""

from __future__ import annotations

import json
import os
import time

import pytest

from tests.bfcl_support import bfcl_root, evaluate_argv
from tests.test_bfcl_generate import tiny_tokenizer_dir
from tool_n1.openai_stub import Action, OpenAIStub

pytestmark = pytest.mark.eval_env

KEY_ENV = "TOOL_N1_TEST_SERVER_KEY"


def test_api_key_reaches_every_request_of_every_seed(tmp_path, monkeypatch):
    root = bfcl_root()
    import run_bfcl

    monkeypatch.setenv(KEY_ENV, "sk-test-123")
    monkeypatch.delenv("REMOTE_OPENAI_API_KEY", raising=False)
    model_dir = tiny_tokenizer_dir(tmp_path / "tiny")
    with OpenAIStub(default=Action.ok("<tool_call>[]</tool_call>"), api_key="sk-test-123") as stub:
        code = run_bfcl.main(
            [
                "generate",
                "--project-root",
                str(root),
                "--model",
                "tool-n1/key-test",
                "--base-url",
                stub.base_url,
                "--local-model-path",
                str(model_dir),
                "--api-key-env",
                KEY_ENV,
                "--ids",
                "irrelevance_0,irrelevance_1",
                "--num-threads",
                "2",
                "--seeds",
                "2",
                "--result-dir",
                str(tmp_path / "result"),
                "--wait",
                "10",
            ]
        )
        posts = [r.authorization for r in stub.state.requests]
        seeds = sorted(r.body.get("seed") for r in stub.state.requests)
        gets = list(stub.state.models_requests)
    assert code == 0
    assert len(posts) == 4 and set(posts) == {"Bearer sk-test-123"} and seeds == [1, 1, 2, 2]
    assert (tmp_path / "result" / "tool-n1_key-test_seed-2" / run_bfcl.SIDECAR).exists()
    assert gets and set(gets) == {"Bearer sk-test-123"}  # our readiness check and bfcl's own


def test_wrong_key_fails_at_once(tmp_path):
    bfcl_root()
    import run_bfcl

    with OpenAIStub(api_key="right") as stub:
        start = time.monotonic()
        with pytest.raises(SystemExit, match="refused the API key"):
            run_bfcl.wait_for_server(stub.base_url, timeout=30, api_key="wrong")
        assert time.monotonic() - start < 5 and len(stub.state.models_requests) == 1


def test_bfcl_readiness_loop_is_paced_and_bounded():
    bfcl_root()
    import bfcl_runtime
    from bfcl_eval.model_handler.local_inference import base_oss_handler

    with OpenAIStub(api_key="right") as stub:
        shim = bfcl_runtime.pace_readiness_check("wrong", timeout=30)
        assert base_oss_handler.requests is shim
        with pytest.raises(bfcl_runtime.ServerNotReady, match="401"):
            shim.get(stub.base_url + "/models")
    shim = bfcl_runtime.PacedReadiness(None, timeout=1.0, pause=0.3)
    start = time.monotonic()
    with pytest.raises(bfcl_runtime.ServerNotReady, match="deadline"):
        while True:  # bfcl's loop: retries on ConnectionError until ready
            try:
                shim.get("http://127.0.0.1:9/v1/models")
            except shim.exceptions.ConnectionError:
                continue
    assert time.monotonic() - start < 5 and shim.attempts <= 5


def _write_results(folder, category, results):
    group = "live" if category.startswith("live") else "non_live"
    (folder / group).mkdir(parents=True, exist_ok=True)
    lines = [
        json.dumps({"id": i, "result": r, "latency": 1.0, "input_token_count": 1, "output_token_count": 1})
        for i, r in results
    ]
    (folder / group / f"BFCL_v4_{category}_result.json").write_text("\n".join(lines) + "\n")


def test_one_item_run_and_server_errors(tmp_path):
    root = bfcl_root()
    import run_bfcl

    key = "tool-n1/runtime-test"
    folder = tmp_path / "result" / key.replace("/", "_")
    _write_results(folder, "irrelevance", [("irrelevance_0", "<think>t</think><tool_call>[]</tool_call>")])
    common = evaluate_argv(root, key, tmp_path, "irrelevance")
    report = run_bfcl.run(common)  # one item: bfcl's latency stdev would raise
    assert report["categories"]["irrelevance"]["accuracy"] == 100.0

    failed = "Error during inference: Error code: 400 - maximum context length is 512"
    _write_results(folder, "irrelevance", [("irrelevance_0", "<tool_call>[]</tool_call>"), ("irrelevance_1", failed)])
    with pytest.raises(SystemExit, match="1 result entries are failed requests"):
        run_bfcl.main(common)
    report = run_bfcl.run([*common, "--allow-server-errors", "1"])
    irrelevance = report["categories"]["irrelevance"]
    assert irrelevance["server_errors"] == 1 and irrelevance["correct"] == 1 and irrelevance["accuracy"] == 50.0
    assert os.environ.get("BFCL_PROJECT_ROOT") == str(root)
