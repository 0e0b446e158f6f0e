"""BFCL memory (memory_kv, memory_rec_sum) through ``run_bfcl.py``: bfcl-eval's prerequisite conversations fill the
memory through our handler, bfcl-eval's memory executor (behind the execution guard) and its snapshot files; the
questions read it back; bfcl-eval's agentic checker scores the final answers. memory_vector (a hub embedding model)
is never imported."""

from __future__ import annotations

import json
import re
import socket
import sys

import pytest

from tests.bfcl_support import bfcl_root, evaluate_argv, tiny_tokenizer_dir
from tool_n1.openai_stub import Action, OpenAIStub

pytestmark = pytest.mark.eval_env

MESSAGE = re.compile(r"<\|im_start\|>(\w+)\n(.*?)<\|im_end\|>", re.DOTALL)
SCENARIO = "notetaker"  # the smallest prerequisite conversations (5 entries, 24 turns)
VECTOR_MODULES = ("bfcl_eval.eval_checker.multi_turn_eval.func_source_code.memory_vector", "sentence_transformers")


def _reply(calls: list[dict]) -> str:
    return f"<think>Use the memory.</think><tool_call>{json.dumps(calls)}</tool_call>"


def test_ground_truth_answers_score_100_and_a_wrong_answer_0(tmp_path):
    root = bfcl_root()
    import bfcl_synthetic as syn
    import run_bfcl

    for category in syn.MEMORY:
        assert len(syn.write_memory(tmp_path / "result", "tool-n1/mem-truth", category)) == 155
        syn.write_memory(tmp_path / "result", "tool-n1/mem-wrong", category, wrong=True)
    report = run_bfcl.run(evaluate_argv(root, "tool-n1/mem-truth", tmp_path, "memory"))
    assert {c: report["categories"][c]["accuracy"] for c in syn.MEMORY} == dict.fromkeys(syn.MEMORY, 100.0)
    assert report["memory"]["overall"] == 100.0 and report["memory"]["scored"] == 2
    wrong = run_bfcl.run(evaluate_argv(root, "tool-n1/mem-wrong", tmp_path, "memory"))
    assert {c: wrong["categories"][c]["accuracy"] for c in syn.MEMORY} == dict.fromkeys(syn.MEMORY, 0.0)
    assert not any(name in sys.modules for name in VECTOR_MODULES)


def test_generate_round_trip_through_the_prerequisite_flow(tmp_path, monkeypatch):
    """Stub model: in each prerequisite turn it stores the user's message with a memory call, then ends the turn;
    for a question it reads the memory with a call, then answers with the ground truth. bfcl-eval runs the calls,
    writes the snapshots, loads them for the questions, and scores 100 %."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    real_connect = socket.socket.connect

    def loopback_only(self, address):  # no network: only the stub on 127.0.0.1 answers
        if isinstance(address, tuple) and address[0] not in ("127.0.0.1", "::1", "localhost"):
            raise OSError(f"network disabled in this test: {address}")
        return real_connect(self, address)

    monkeypatch.setattr(socket.socket, "connect", loopback_only)
    root = bfcl_root()
    import bfcl_synthetic as syn
    import run_bfcl
    from bfcl_eval.utils import load_dataset_entry, load_ground_truth_entry

    truth = {a["id"]: a["ground_truth"] for a in load_ground_truth_entry("memory_kv")}
    entries = load_dataset_entry("memory_kv", include_language_specific_hint=False)
    conversations = [e for e in entries if "_prereq_" in e["id"] and e["scenario"] == SCENARIO]
    prereq = {e["question"][0][0]["content"]: n for n, e in enumerate(conversations)}
    stored = [turn[0]["content"] for e in conversations for turn in e["question"]]
    questions = {
        e["question"][0][-1]["content"]: truth[e["id"].replace("memory_kv", "memory")]
        for e in entries
        if "_prereq_" not in e["id"] and e["scenario"] == SCENARIO
    }
    ids = [e["id"] for e in entries if "_prereq_" not in e["id"] and e["scenario"] == SCENARIO]
    prompts: list[str] = []

    def responder(body):
        prompt = body.get("prompt", "")
        prompts.append(prompt)
        messages = MESSAGE.findall(prompt)
        users = [text for role, text in messages if role == "user"]
        rec_sum = "memory_append" in messages[0][1]
        if users[0] in questions:
            if messages[-1][0] == "tool":
                return Action.ok(syn.MEMORY_ANSWER.format(answer=questions[users[0]][0]))
            call = {"name": "memory_retrieve", "arguments": {}} if rec_sum else None
            call = call or {"name": "archival_memory_retrieve", "arguments": {"key": "note_0_1"}}
            return Action.ok(_reply([call]))
        if messages[-1][0] == "tool":
            return Action.ok("<think>Stored.</think>Noted, thank you.")
        if rec_sum:
            return Action.ok(_reply([{"name": "memory_append", "arguments": {"text": users[-1] + "\n"}}]))
        key = f"note_{prereq[users[0]]}_{len(users)}"
        return Action.ok(_reply([{"name": "archival_memory_add", "arguments": {"key": key, "value": users[-1]}}]))

    key = "tool-n1/mem-stub"
    model = tiny_tokenizer_dir(tmp_path / "tiny")
    with OpenAIStub(responder=responder) as stub:
        for category in ("memory_kv", "memory_rec_sum"):
            category_ids = [i.replace("memory_kv", category) for i in ids]
            code = run_bfcl.main(
                ["generate", "--project-root", str(root), "--model", key, "--base-url", stub.base_url, "--wait", "10"]
                + ["--local-model-path", str(model), "--num-threads", "2", "--result-dir", str(tmp_path / "result")]
                + ["--ids", ",".join(category_ids)]
            )
            assert code == 0
    assert len(prompts) == 2 * (2 * len(stored) + 2 * len(ids))  # each turn: a call, then text; two backends

    folder = tmp_path / "result" / "tool-n1_mem-stub" / "agentic" / "memory"
    kv = json.loads(next(folder.glob("kv/**/memory_snapshot/notetaker_final.json")).read_text())
    assert sorted(kv["archival_memory"].values()) == sorted(stored)
    rec_sum = json.loads(next(folder.glob("rec_sum/**/memory_snapshot/notetaker_final.json")).read_text())
    assert rec_sum["memory"] == "".join(text + "\n" for text in stored)
    # the questions read what the prerequisite conversations stored: kv through the tool result of their call,
    # rec_sum in the memory content that bfcl-eval writes into the entry's system message (which we keep)
    asked = [MESSAGE.findall(p) for p in prompts]
    asked = [m for m in asked if [t for r, t in m if r == "user"][0] in questions]
    kv_reads = [m[-1][1] for m in asked if m[-1][0] == "tool" and "memory_append" not in m[0][1]]
    assert len(kv_reads) == len(ids) and all(stored[0] in json.loads(read)["value"] for read in kv_reads)
    rec_systems = [m[0][1] for m in asked if "memory_append" in m[0][1]]
    assert len(rec_systems) == 2 * len(ids) and all(stored[-1] in system for system in rec_systems)

    report = run_bfcl.run(evaluate_argv(root, key, tmp_path, "memory_kv,memory_rec_sum"))
    assert {c: report["categories"][c]["accuracy"] for c in syn.MEMORY} == dict.fromkeys(syn.MEMORY, 100.0)
    assert report["categories"]["memory_kv"]["total"] == len(ids)
    assert not any(name in sys.modules for name in VECTOR_MODULES)


def test_memory_vector_is_left_out_of_every_category_list(capsys):
    bfcl_root()
    import run_bfcl

    assert run_bfcl.categories("memory") == "memory_kv,memory_rec_sum"
    assert "memory_vector" not in run_bfcl.categories("all").split(",")
    assert run_bfcl.categories("agentic").split(",").count("memory_kv") == 1
    assert "memory_vector left out" in capsys.readouterr().err
    with pytest.raises(SystemExit, match="nothing left"):
        run_bfcl.categories("memory_vector")
    with pytest.raises(SystemExit, match="left out"):
        run_bfcl.ids_by_category(["memory_vector_0-customer-0"])
    assert run_bfcl.ids_by_category(["format_sensitivity_3"])["format_sensitivity"][0].startswith(
        "format_sensitivity_3:ret_fmt="
    )
    assert not any(name in sys.modules for name in VECTOR_MODULES)


def test_hostile_memory_results_are_scored_wrong_without_crashing(tmp_path):
    root = bfcl_root()
    import bfcl_synthetic as syn
    import run_bfcl

    ids = syn.write_memory(tmp_path / "result", "tool-n1/mem-hostile", "memory_kv")
    hostile = [
        None,
        "not a list",
        [],
        [[None]],
        [[{"answer": 1}]],
        [["x" * 1_000_000]],
        [["\udcff\ud800 answer"]],
        [[json.loads("[" * 500 + "]" * 500)]],
        [["<tool_call>" + "[" * 600 + "]" * 600 + "</tool_call>"]],
        [[syn.MEMORY_ANSWER.format(answer="x" * 300_000)]],
    ]
    path = next((tmp_path / "result").rglob("BFCL_v4_memory_kv_result.json"))
    path.write_text(
        "".join(json.dumps({"id": i, "result": hostile[n % len(hostile)]}) + "\n" for n, i in enumerate(ids))
    )
    report = run_bfcl.run(evaluate_argv(root, "tool-n1/mem-hostile", tmp_path, "memory_kv"))
    assert report["categories"]["memory_kv"]["accuracy"] == 0.0
