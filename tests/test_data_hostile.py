"""Hostile inputs, generated here: no row ends a stage, every row is counted, whatever stage 1 writes stage 2 reads.

Each case checks the accounting (rows read = used + rejected, call turns = kept + rejected) and the reason."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from records import OutputLocked, locked_output_dir

import data_process
from tests.conftest import REPO

INTRO = "Here is a list of functions in JSON format that you can invoke:\n"
END = ". \nShould you decide to return the function call(s). \nPut it in the format of [f(x=1)]\n\nNO other text."


def tool(name, properties=None, required=None):
    parameters = {"type": "dict", "properties": properties or {"city": {"type": "string"}}}
    if required is not None:
        parameters["required"] = required
    return {"name": name, "description": "d", "parameters": parameters}


def dialog(turns, tools=None, **extra):
    tools = tools or [tool("get_weather")]
    return {"system": "Preamble.\n" + INTRO + json.dumps(tools) + END, "conversations": turns, **extra}


def calls(value, *more):
    return [{"from": "user", "value": "q"}, {"from": "assistant", "value": value}, *more]


def xlam_row(arguments_json='{"city": "Oslo"}', **extra):
    answers = '[{"name": "get_weather", "arguments": ' + arguments_json + "}]"
    tools = json.dumps([{"name": "get_weather", "description": "d", "parameters": {"city": {"type": "str"}}}])
    return {"query": "weather?", "answers": answers, "tools": tools, **extra}


def stage1(tmp_path, *args, name="unified"):
    out = tmp_path / name
    code = data_process.main([*args, "--output-dir", str(out), "--no-progress", "--log-level", "ERROR"])
    report = json.loads((out / "report.json").read_text())
    for source, counts in report["sources"].items():
        assert counts["rows_read"] == counts["rows_used"] + sum(counts["rows_rejected"].values()), source
        assert counts["call_turns"] == counts["samples_kept"] + sum(counts["call_turns_rejected"].values()), source
    assert report["invariant_errors"] == []
    return code, out, report


def reasons(report, source, unit="rows_rejected"):
    return dict(report["sources"][source][unit])


def stage2_reads_everything(tmp_path, unified):
    pytest.importorskip("pyarrow")
    import to_verl_parquet

    out = tmp_path / "verl"
    code = to_verl_parquet.main(["--input", str(unified / "unified.jsonl"), "--output-dir", str(out), "--no-progress"])
    report = json.loads((out / "parquet_report.json").read_text())
    assert code == 0 and report["records_rejected"] == {}
    return report


DEEP = 1000


@pytest.mark.parametrize("mode", ["faithful", "improved"])
def test_no_row_ends_stage_1(tmp_path, mode):
    deep_value = "[" * DEEP + "]" * DEEP
    toolace_rows = [
        dialog(calls('[get_weather(city="Oslo")]')),  # fine
        dialog(calls('[get_weather(city="Oslo")]'), extra=json.loads("[" * 900 + "]" * 900)),  # deep, decodable
        dialog(calls('[get_weather(city="Oslo")]'), tools=[tool("get_weather", required=5)]),
        dialog(calls("[get_weather(city={1, 2})]")),  # a set literal
        dialog(calls("[get_weather(city=1j)]")),  # complex
        dialog(calls("[get_weather(city=b'x')]")),  # bytes
        dialog(calls("[get_weather(city=" + "[" * 500 + "]" * 500 + ")]")),  # arguments nested 500 deep
        dialog(calls('[get_weather(city="' + "9" * 5000 + '")]')),
        dialog(calls("[get_weather(city=" + "9" * 5000 + ")]")),  # an integer beyond 4,300 digits
    ]
    text = json.dumps(toolace_rows)
    text = text[:-1] + ', {"system": "x", "conversations": ' + deep_value + "}]"  # too deep to decode
    (tmp_path / "t.json").write_text(text)
    xlam_lines = [
        json.dumps(xlam_row()),
        json.dumps(xlam_row()).replace('"query"', '"id": ' + "9" * 5000 + ', "query"'),  # raw integer too long
        json.dumps(xlam_row(query="lone \ud800 surrogate")),  # valid JSON, but no parquet string can hold it
        json.dumps(xlam_row('{"city": ' + "9" * 5000 + "}")),  # in the answers string
        json.dumps(xlam_row('{"city": ' + "[" * 950 + "]" * 950 + "}")),  # deep answer, decodable
        json.dumps(xlam_row('{"city": ' + "[" * DEEP + "]" * DEEP + "}")),  # too deep to decode
        '{"query": ' + deep_value + "}",
    ]
    (tmp_path / "x.jsonl").write_text("\n".join(xlam_lines) + "\n")
    code, out, report = stage1(
        tmp_path, "--mode", mode, "--toolace", str(tmp_path / "t.json"), "--xlam", str(tmp_path / "x.jsonl")
    )
    assert code == 0
    toolace = report["sources"]["toolace"]
    assert toolace["rows_read"] == 10 and toolace["samples_kept"] >= 1
    rejected = reasons(report, "toolace")
    for reason, count in reasons(report, "toolace", "call_turns_rejected").items():
        rejected[reason] = rejected.get(reason, 0) + count
    if mode == "faithful":  # the original crashed on these literals; here each is one counted call turn
        assert rejected == {"too_deeply_nested": 1, "call_value_not_json": 3}
    else:
        assert rejected == {
            "too_deeply_nested": 2,  # the list nested 1,000 deep, the arguments nested 500 deep
            "tool_list_unparsable": 1,  # required: 5
            "argument_type_mismatch": 1,  # the set, read as a list, for a string parameter
            "call_string_unparseable": 3,  # complex, bytes, the integer of 5,000 digits
        }
    xlam = report["sources"]["xlam"]
    assert xlam["rows_read"] == 7 and xlam["samples_kept"] == 1
    assert reasons(report, "xlam") == {"integer_too_large": 2, "too_deeply_nested": 3}
    assert reasons(report, "xlam", "call_turns_rejected") == {"lone_surrogate": 1}
    stage2_reads_everything(tmp_path, out)


def test_stage_2_never_crashes_on_deep_records(tmp_path):
    pytest.importorskip("pyarrow")
    import to_verl_parquet

    good = {"id": "xlam", "raw_system": "S", "tools": [], "conversations": [{"from": "human", "value": "q"}]}
    deep = json.loads("[" * 450 + "]" * 450)
    lines = [
        {**good, "answer": []},
        {**good, "answer": [{"name": "f", "arguments": {"a": deep}}]},
        {**good, "answer": [], "tools": [{"name": "f", "parameters": deep}]},
    ]
    (tmp_path / "u.jsonl").write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    code = to_verl_parquet.main(
        ["--input", str(tmp_path / "u.jsonl"), "--output-dir", str(tmp_path / "v"), "--no-progress"]
    )
    report = json.loads((tmp_path / "v" / "parquet_report.json").read_text())
    assert code in (0, 1) and report["records_read"] == 3
    assert (
        sum(report["rows_written"].values()) + len(report["records_rejected"]) + report["split"]["dropped_by_split"]
        == 3
    )


def test_rows_are_never_lost_or_changed_without_a_count(tmp_path):
    rows = [xlam_row(), xlam_row(), xlam_row()]
    one = json.dumps(rows[:2]).encode()
    (tmp_path / "concatenated.json").write_bytes(one + b"\n" + one)  # cat a.json b.json
    (tmp_path / "trailing.json").write_bytes(one + b" garbage")
    (tmp_path / "bad_byte.json").write_bytes(json.dumps(rows).encode().replace(b"weather?", b"weather\xff", 1))
    lines = [json.dumps(row).encode() for row in rows]
    (tmp_path / "bad_byte.jsonl").write_bytes(
        lines[0] + b"\n" + lines[1].replace(b"weather?", b"w\xe9") + b"\n" + lines[2] + b"\n"
    )
    (tmp_path / "bom.jsonl").write_bytes(b"\xef\xbb\xbf" + b"\n".join(lines) + b"\n")
    expected = {
        "concatenated.json": (4, {}),
        "trailing.json": (2, {"malformed_json": 1}),
        "bad_byte.json": (2, {"invalid_utf8": 1}),
        "bad_byte.jsonl": (2, {"invalid_utf8": 1}),
        "bom.jsonl": (3, {}),
    }
    for name, (kept, rejected) in expected.items():
        code, out, report = stage1(tmp_path, "--xlam", str(tmp_path / name), name=f"out-{name}")
        assert code == 0, name
        assert (report["sources"]["xlam"]["samples_kept"], reasons(report, "xlam")) == (kept, rejected), name
    lines = (tmp_path / "out-bad_byte.json" / "rejections.jsonl").read_text().splitlines()
    assert json.loads(lines[0])["position"].endswith("bad_byte.json#0")
    lines = (tmp_path / "out-bad_byte.jsonl" / "rejections.jsonl").read_text().splitlines()
    assert json.loads(lines[0])["position"].endswith("bad_byte.jsonl:2")
    assert "\ufffd" not in (tmp_path / "out-bad_byte.jsonl" / "unified.jsonl").read_text()


def test_a_long_dialog_costs_linear_time_and_a_capped_context(tmp_path):
    turns = [{"from": "user", "value": "q" * 100}]
    for k in range(600):  # about 270 KB: 600 call turns, each with its result
        turns.append({"from": "assistant", "value": f'[get_weather(city="{k}")]'})
        turns.append({"from": "tool", "value": json.dumps([{"name": "get_weather", "results": {"t": "x" * 300}}])})
    (tmp_path / "t.json").write_text(json.dumps([dialog(turns)]))
    assert (tmp_path / "t.json").stat().st_size > 250_000
    started = time.perf_counter()
    code, out, report = stage1(tmp_path, "--toolace", str(tmp_path / "t.json"), "--max-context-chars", "20000")
    assert time.perf_counter() - started < 10 and code == 0
    counts = report["sources"]["toolace"]
    assert (
        counts["call_turns"] == 600
        and counts["samples_kept"] + counts["call_turns_rejected"]["context_too_long"] == 600
    )
    assert max(len(line) for line in (out / "unified.jsonl").open()) < 30_000


def test_toolace_labels_checked_in_improved_mode(tmp_path):
    result = {"from": "tool", "value": json.dumps([{"name": "get_weather", "results": {"t": 1}}])}
    tools = [tool("get_weather", required=["city"]), tool("Weather Lookup (Pro)"), tool("get_time")]
    rows = [
        dialog([{"from": "human", "value": "q"}, {"from": "function_call", "value": "[]"}, result], tools),
        dialog(calls('[Weather Lookup (Pro)(city="Oslo")]'), tools),
        dialog(calls("[get_weather(city=3.5)]"), tools),  # a string parameter holding a float
        dialog(calls("[get_weather()]"), tools),  # required city missing
        dialog(calls('[get_time(city="x")]', result), tools),  # results from another tool
    ]
    (tmp_path / "t.json").write_text(json.dumps(rows))
    code, _, faithful = stage1(tmp_path, "--toolace", str(tmp_path / "t.json"), "--mode", "faithful", name="f")
    assert code == 0 and faithful["sources"]["toolace"]["samples_kept"] == 4  # "[]" kept once; "(Pro)" unparsed
    code, _, improved = stage1(tmp_path, "--toolace", str(tmp_path / "t.json"), name="i")
    assert code == 0 and improved["sources"]["toolace"]["samples_kept"] == 1  # Weather Lookup (Pro)
    assert reasons(improved, "toolace", "call_turns_rejected") == {
        "empty_call_with_tool_results": 1,
        "argument_type_mismatch": 1,
        "required_argument_missing": 1,
        "calls_disagree_with_tool_results": 1,
    }
    flags = ["--no-check-argument-types", "--no-check-required", "--no-check-tool-results"]
    code, _, unchecked = stage1(tmp_path, "--toolace", str(tmp_path / "t.json"), *flags, name="u")
    assert unchecked["sources"]["toolace"]["samples_kept"] == 4


def test_sharegpt_rows_take_their_tools_from_the_tools_field(shared_fixtures, tmp_path):
    path = shared_fixtures / "glaive" / "glaive_toolcall_en_demo_rows_0-19.json"
    code, out, report = stage1(tmp_path, "--toolace", str(path))
    rows = json.loads(path.read_text())
    with_tools = sum(1 for row in rows if json.loads(row["tools"]))
    assert code == 0 and report["sources"]["toolace"]["rows_used"] == with_tools
    assert reasons(report, "toolace") == {"tool_list_missing": len(rows) - with_tools}  # "tools": "[]"
    first = json.loads((out / "unified.jsonl").read_text().splitlines()[0])
    assert first["answer"][0]["name"] == "search_recipes" and first["tools"][0]["name"] == "search_recipes"


def test_a_second_writer_is_refused(tmp_path, capsys):
    (tmp_path / "x.jsonl").write_text(json.dumps(xlam_row()) + "\n")
    with locked_output_dir(tmp_path / "out", ()):
        code = data_process.main(["--xlam", str(tmp_path / "x.jsonl"), "--output-dir", str(tmp_path / "out")])
        assert code == 1 and "being written by another run" in capsys.readouterr().err
        with pytest.raises(OutputLocked):
            with locked_output_dir(tmp_path / "out", ()):
                pass
    assert not (tmp_path / "out" / "unified.jsonl").exists()


def test_a_killed_run_leaves_nothing_in_the_next_runs_outputs(tmp_path):
    lines = [json.dumps(xlam_row()) for _ in range(200)]
    (tmp_path / "x.jsonl").write_text("\n".join(lines) + "\n")
    slow = (
        "import sys, time, data_process\n"
        "take = data_process.Stage1.take\n"
        "def slow(self, *a):\n    time.sleep(0.05)\n    take(self, *a)\n    self.output.flush()\n"
        "data_process.Stage1.take = slow\n"
        "sys.exit(data_process.main(sys.argv[1:]))\n"
    )
    out = tmp_path / "out"
    argv = ["--xlam", str(tmp_path / "x.jsonl"), "--output-dir", str(out), "--no-progress"]
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    process = subprocess.Popen([sys.executable, "-c", slow, *argv], cwd=REPO / "data_process", env=env)
    partial = out / "unified.partial.jsonl"
    for _ in range(400):
        if partial.exists() and partial.stat().st_size:
            break
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert partial.exists() and not (out / "unified.jsonl").exists()
    code, out, report = stage1(tmp_path, "--xlam", str(tmp_path / "x.jsonl"), name="out")
    assert code == 0 and report["sources"]["xlam"]["samples_kept"] == 200
    assert sorted(p.name for p in out.iterdir()) == [".lock", "rejections.jsonl", "report.json", "unified.jsonl"]
