"""eval/serve_hf.py (a CPU stand-in for `vllm serve`) and eval/heldout.py against it, with a tiny model built here."""

import json
import subprocess
import sys
import threading
import urllib.error
import urllib.request

import pytest
from tiny_model import build_tiny_qwen2, build_tiny_tokenizer, write_toy_parquet

from tests.conftest import REPO

pytestmark = pytest.mark.rl_env  # torch, transformers and pyarrow: the RL environment has all three


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    import serve_hf

    model_dir = tmp_path_factory.mktemp("tiny")
    build_tiny_qwen2(model_dir, build_tiny_tokenizer(model_dir))
    srv = serve_hf.build_server(str(model_dir), "127.0.0.1", 0, "cpu", max_tokens_cap=8, seed=0, served_name="tiny")
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}/v1", model_dir
    srv.shutdown()
    srv.server_close()


def post(url, payload):
    request = urllib.request.Request(url, json.dumps(payload).encode(), {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())


def test_routes_and_openai_shapes(server):
    base, _ = server
    with urllib.request.urlopen(base + "/models", timeout=10) as response:
        assert json.loads(response.read())["data"][0]["id"] == "tiny"
    text = post(
        base + "/completions", {"model": "tiny", "prompt": "<|im_start|>user\nhi<|im_end|>\n", "max_tokens": 5}
    )
    assert text["object"] == "text_completion" and isinstance(text["choices"][0]["text"], str)
    assert 1 <= text["usage"]["completion_tokens"] <= 5
    chat = post(
        base + "/chat/completions",
        {"model": "tiny", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 100},
    )
    assert chat["choices"][0]["message"]["role"] == "assistant"
    assert chat["usage"]["completion_tokens"] <= 8  # --max-tokens-cap bounds every request
    again = post(base + "/chat/completions", {"model": "tiny", "messages": [{"role": "user", "content": "hi"}]})
    assert again["choices"][0]["message"]["content"] == chat["choices"][0]["message"]["content"]  # greedy


def test_bad_requests_get_clear_errors(server):
    base, _ = server
    with pytest.raises(urllib.error.HTTPError) as info:
        post(base + "/chat/completions", {"model": "tiny"})
    assert info.value.code == 400 and "messages" in info.value.read().decode()
    with pytest.raises(urllib.error.HTTPError) as info:
        post(base + "/embeddings", {})
    assert info.value.code == 404


def test_heldout_evaluation_end_to_end(server, tmp_path):
    base, _ = server
    data = write_toy_parquet(tmp_path / "heldout.parquet", n=4, split="test")
    out = tmp_path / "heldout_eval"
    cmd = [
        sys.executable,
        str(REPO / "eval" / "heldout.py"),
        "--data",
        str(data),
        "--output",
        str(out),
        "--base-url",
        base,
        "--model",
        "tiny",
        "--max-tokens",
        "8",
        "--concurrency",
        "2",
    ]
    subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=120)
    report = json.loads((out / "report.json").read_text())
    assert report["all"]["n"] == 4 and report["all"]["missing"] == 0
    assert len((out / "raw.jsonl").read_text().splitlines()) == 4
    # a random tiny model does not produce tool calls: every metric is a rate in [0, 1] and the reward is 0
    assert report["all"]["score"] == 0.0 and 0.0 <= report["all"]["format_ok"] <= 1.0


def test_heldout_scores_saved_predictions_exactly(tmp_path):
    import heldout

    from tool_n1.prompts import format_response

    data = write_toy_parquet(tmp_path / "h.parquet", n=4, split="test")
    rows = heldout.load_rows(data, None)
    outputs = {}
    for i, row in enumerate(rows):
        calls = json.loads(row["reward_model"]["ground_truth"])
        outputs[heldout.row_id(row, i)] = format_response(calls, "ok") if i % 2 == 0 else "no call"
    report = heldout.score_outputs(rows, outputs)
    assert report["all"] == {
        "n": 4,
        "answered": 4,
        "unanswered": 0,
        "missing": 0,
        "score": 0.5,
        "format_ok": 0.5,
        "call_parsed": 0.5,
        "calls_match": 0.5,
    }
    # an item without an answer is counted apart, not scored as wrong
    del outputs[heldout.row_id(rows[1], 1)]
    report = heldout.score_outputs(rows, outputs)
    assert report["all"]["unanswered"] == 1 and report["all"]["answered"] == 3
    assert report["all"]["calls_match"] == pytest.approx(2 / 3)
    with pytest.raises(SystemExit, match="does not exist"):
        heldout.load_rows(tmp_path / "nope.parquet", None)


def test_heldout_fails_loudly_on_unanswered_items(tmp_path, capsys):
    import heldout

    data = write_toy_parquet(tmp_path / "h.parquet", n=3, split="test")
    out = tmp_path / "dead"
    argv = [
        "--data",
        str(data),
        "--output",
        str(out),
        "--base-url",
        "http://127.0.0.1:9/v1",
        "--model",
        "x",
        "--retries",
        "0",
        "--rounds",
        "2",
        "--timeout",
        "2",
    ]
    assert heldout.main(argv) == 3  # nothing listens on port 9: every request fails, twice
    printed = capsys.readouterr().out
    assert "round 2: requesting 3 unanswered item(s) again" in printed and "3 of 3 item(s) got no answer" in printed
    report = json.loads((out / "report.json").read_text())
    assert report["all"]["unanswered"] == 3 and report["all"]["answered"] == 0
    scores = [json.loads(line) for line in (out / "scores.jsonl").read_text().splitlines()]
    assert [item["answered"] for item in scores] == [False, False, False]


def test_concurrent_requests_are_batched_and_all_answered(server):
    from concurrent.futures import ThreadPoolExecutor

    base, _ = server
    prompts = ["hi", "weather in Oslo?", "hi", "book a flight to Lima please"]
    payloads = [{"model": "tiny", "messages": [{"role": "user", "content": p}], "max_tokens": 6} for p in prompts]
    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(lambda p: post(base + "/chat/completions", p), payloads))
    texts = [a["choices"][0]["message"]["content"] for a in answers]
    assert all(1 <= a["usage"]["completion_tokens"] <= 6 for a in answers)
    assert texts[0] == texts[2]  # the same prompt in one batch gets the same greedy answer
    assert answers[1]["usage"]["prompt_tokens"] != answers[3]["usage"]["prompt_tokens"]  # padding not counted
