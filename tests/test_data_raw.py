"""Stage 1 (raw ToolACE / xLAM -> unified records): real fixture rows, the reference's synthetic dialog, bad input."""

import json

import pytest
import toolace
import xlam
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from records import RawOptions, Report, RowRejected

import data_process
from tool_n1.prompts import DEFAULT_PREAMBLE

TOOLACE_INTRO = "Here is a list of functions in JSON format that you can invoke:\n"
TOOLACE_END = (
    ". \nShould you decide to return the function call(s). \nPut it in the format of [f(x=1)]\n\nNO other text."
)
TOOLS = [
    {"name": "get_weather", "description": "Weather.", "parameters": {"type": "dict", "properties": {}}},
    {"name": "book", "description": "Book.", "parameters": {"type": "dict", "properties": {}}},
]


def options(mode, **overrides):
    return RawOptions.for_mode(mode, **overrides)


def run_stage1(tmp_path, *args):
    out = tmp_path / "unified"
    code = data_process.main([*args, "--output-dir", str(out), "--no-progress", "--log-level", "ERROR"])
    records = [json.loads(line) for line in (out / "unified.jsonl").read_text().splitlines()]
    return code, records, json.loads((out / "report.json").read_text())


def toolace_row(turns, tools=TOOLS, end=TOOLACE_END):
    return {"system": "Preamble.\n" + TOOLACE_INTRO + json.dumps(tools) + end, "conversations": turns}


EIGHT_TURNS = [
    ("human", "Weather in Paris and book 7"),
    ("gpt", '[get_weather(city="Paris")]'),
    ("observation", '[{"name": "get_weather", "results": {"t": 20}}]'),
    ("gpt", "[book(id=7), unknown_tool(a=1)]"),
    ("observation", "[]"),
    ("gpt", "It is 20C in Paris."),
    ("human", "Book 8 too"),
    ("gpt", "[book(id=8)]"),
]


# --------------------------------------------------------------------------- real fixtures


@pytest.mark.parametrize("mode", ["faithful", "improved"])
def test_hub_format_row2_gives_the_two_hand_checked_samples(shared_fixtures, tmp_path, mode):
    path = shared_fixtures / "toolace" / "hub_format_row2.json"
    code, records, report = run_stage1(tmp_path, "--toolace", str(path), "--mode", mode)
    assert code == 0
    assert [r["answer"] for r in records] == [
        [{"name": "GetCompetitions", "arguments": {}}],
        [{"name": "Get Manager Placeholder Image", "arguments": {"sport": "football"}}],
    ]
    assert [r["id"] for r in records] == ["toolace_single_turn", "toolace_multiple_turn"]
    assert [len(r["conversations"]) for r in records] == [1, 7]
    assert [t["from"] for t in records[1]["conversations"]] == [
        "human",
        "function_call",
        "observation",
        "gpt",
        "human",
        "gpt",
        "human",
    ]
    assert records[1]["conversations"][1]["value"] == '[{"name": "GetCompetitions", "arguments": {}}]'
    assert records[0]["raw_system"].endswith("tools call sections.\n" + TOOLACE_INTRO)
    names = [t["name"] for t in records[0]["tools"]]
    assert names == [
        "GetCompetitions",
        "Get Manager Placeholder Image",
        "Search Competition API",
        "Get Category Image",
    ]
    container = records[0]["tools"][0]["parameters"]["type"]
    assert container == ("dict" if mode == "faithful" else "object")
    counts = report["sources"]["toolace"]
    assert (counts["rows_read"], counts["rows_used"], counts["call_turns"], counts["samples_kept"]) == (1, 1, 2, 2)
    assert counts["groups"] == {"multi": {"dialogs": 1, "samples": 2}}  # 3 user turns -> multi-turn dialog
    assert report["invariant_errors"] == []


@pytest.mark.parametrize("mode", ["faithful", "improved"])
def test_xlam_distilabel_rows_exact(shared_fixtures, tmp_path, mode):
    path = shared_fixtures / "xlam" / "distilabel_sample_rows.json"
    raw = json.loads(path.read_text())
    code, records, report = run_stage1(tmp_path, "--xlam", str(path), "--mode", mode)
    assert code == 0 and len(records) == 3
    assert records[0]["answer"] == [{"name": "get_breed_information", "arguments": {"breed": "Maine Coon"}}]
    assert records[1]["answer"] == [
        {"name": "mailcheck", "arguments": {"domain": "protonmail.com"}},
        {"name": "mailcheck", "arguments": {"domain": "mail.com"}},
        {"name": "get_products_in_category", "arguments": {"skip": 20, "limit": 25, "category": "furniture"}},
    ]
    assert records[1]["conversations"] == [{"from": "human", "value": raw[1]["query"]}]
    assert all(r["id"] == "xlam" and r["raw_system"] == DEFAULT_PREAMBLE for r in records)
    mailcheck = records[1]["tools"][0]
    if mode == "faithful":
        assert [r["tools"] for r in records] == [json.loads(row["tools"]) for row in raw]
    else:
        assert mailcheck["parameters"] == {
            "type": "object",
            "properties": {
                "domain": {"type": "string", "description": raw_description(raw), "default": "mailinator.com"}
            },
            "required": [],
        }
    assert report["sources"]["xlam"]["samples_kept"] == 3


def raw_description(raw):
    return json.loads(raw[1]["tools"])[0]["parameters"]["domain"]["description"]


def test_xlam_audited_rows_all_kept_in_both_modes(shared_fixtures, tmp_path):
    path = shared_fixtures / "xlam" / "audited_rows.json"
    for mode in ("faithful", "improved"):
        code, records, _ = run_stage1(tmp_path / mode, "--xlam", str(path), "--mode", mode)
        assert code == 0 and len(records) == 40
    assert {r["origin"].rsplit("#", 1)[1] for r in records} == {str(i) for i in range(40)}


def test_sharegpt_copy_lossy_call_names_are_rejected_with_reasons(shared_fixtures, tmp_path):
    path = shared_fixtures / "toolace" / "sharegpt_func_fixed_rows_0-49.json"
    code, records, report = run_stage1(tmp_path, "--toolace", str(path))
    counts = report["sources"]["toolace"]
    assert counts["rows_read"] == counts["rows_used"] == 50
    assert counts["call_turns"] == 93  # SOURCE.md: 93 function_call turns in rows 0-49
    assert counts["call_turns_rejected"]["unknown_tool_in_answer"] == 93 - len(records)
    assert report["rejection_examples"]["toolace/call_turn/unknown_tool_in_answer"][0].endswith("#0/turn 1")


# --------------------------------------------------------------------------- original behaviour (reference §1.2)


def test_reference_eight_turn_dialog():
    row = toolace_row([{"from": f, "value": v} for f, v in EIGHT_TURNS])
    outcome = toolace.process_dialog(row, options("faithful"))
    samples = outcome["samples"]
    assert [(s["id"], len(s["conversations"]), s["answer"]) for s in samples] == [
        ("toolace_single_turn", 1, [{"name": "get_weather", "arguments": {"city": "Paris"}}]),
        ("toolace_multiple_turn", 7, [{"name": "book", "arguments": {"id": 8}}]),
    ]
    assert [t["from"] for t in samples[1]["conversations"]] == [
        "human",
        "function_call",
        "observation",
        "function_call",
        "observation",
        "gpt",
        "human",
    ]
    assert outcome["call_turns"] == 3
    assert [(turn, code) for turn, code, _ in outcome["rejected"]] == [(3, "unknown_tool_in_answer")]
    with_nocall = toolace.process_dialog(row, options("faithful", include_nocall=True))["samples"]
    assert [(s["turn"], s["answer"] and s["answer"][0]["name"]) for s in with_nocall] == [
        (1, "get_weather"),
        (5, []),
        (7, "book"),
    ]


def test_hub_role_names_give_the_same_samples():
    hub = {"human": "user", "gpt": "assistant", "observation": "tool"}
    row = toolace_row([{"from": hub[f], "value": v} for f, v in EIGHT_TURNS])
    assert len(toolace.process_dialog(row, options("improved"))["samples"]) == 2


def test_faithful_tool_extraction_rejects_where_the_original_crashes():
    row = toolace_row([{"from": "human", "value": "hi"}], end="\nShould you decide to return the function call(s).")
    with pytest.raises(RowRejected) as caught:
        toolace.process_dialog(row, options("faithful"))
    assert caught.value.code == "tool_list_unparsable"
    assert toolace.process_dialog(row, options("improved"))["group"] == "single"  # robust extraction copes


def test_faithful_parser_keeps_original_defects_and_robust_fixes_them():
    row = toolace_row([{"from": "human", "value": "q"}, {"from": "gpt", "value": "[book(h=(1, 2), flag=true)]"}])
    faithful = toolace.process_dialog(row, options("faithful"))["samples"][0]["answer"]
    improved = toolace.process_dialog(row, options("improved"))["samples"][0]["answer"]
    assert faithful == [{"name": "book", "arguments": {"h": "(1, 2"}}]  # the call ends at its first ")"
    assert improved == [{"name": "book", "arguments": {"h": [1, 2], "flag": True}}]


# --------------------------------------------------------------------------- bad input


def test_bad_inputs_are_counted_with_reasons_and_positions(tmp_path):
    good = {
        "id": 1,
        "query": "q",
        "answers": json.dumps([{"name": "f", "arguments": {}}]),
        "tools": json.dumps([{"name": "f", "description": "d", "parameters": {}}]),
    }
    lines = [
        json.dumps(good),
        "{not json",
        json.dumps({"id": 2, "query": "q", "tools": good["tools"]}),
        json.dumps({**good, "tools": "[{broken"}),
        json.dumps({**good, "answers": json.dumps([{"name": "g", "arguments": {}}])}),
        json.dumps([1, 2]),
    ]
    (tmp_path / "x.jsonl").write_text("\n".join(lines) + "\n")
    (tmp_path / "empty.json").write_text("")
    dialog = toolace_row([{"from": "user", "value": "q"}, {"from": "assistant", "value": "[get_weather(city=)]"}])
    (tmp_path / "t.json").write_text(json.dumps([dialog, {"system": "no tools here", "conversations": []}]))
    code, records, report = run_stage1(
        tmp_path,
        "--xlam",
        str(tmp_path / "x.jsonl"),
        str(tmp_path / "empty.json"),
        str(tmp_path / "missing.json"),
        "--toolace",
        str(tmp_path / "t.json"),
    )
    assert code == 1  # two inputs could not be read
    assert len(records) == 1
    xlam_counts = report["sources"]["xlam"]
    assert xlam_counts["rows_read"] == 6 and xlam_counts["rows_used"] == 1
    assert xlam_counts["rows_rejected"] == {
        "malformed_json": 1,
        "missing_field": 1,
        "tool_list_unparsable": 1,
        "unknown_tool_in_answer": 1,
        "not_an_object": 1,
    }
    toolace_counts = report["sources"]["toolace"]
    assert toolace_counts["rows_rejected"] == {"tool_list_missing": 1}
    assert toolace_counts["call_turns_rejected"] == {"call_string_unparseable": 1}
    assert report["rejection_examples"]["xlam/row/malformed_json"] == [f"{tmp_path / 'x.jsonl'}:2"]
    assert len(report["rejection_examples"]["xlam/input/input_unreadable"]) == 2
    assert report["invariant_errors"] == []
    assert any("TOOLACE" in w.upper() and "< 1 %" in w for w in report["warnings"])
    rejections = (tmp_path / "unified" / "rejections.jsonl").read_text().splitlines()
    assert len(rejections) == 9


def test_strict_stops_at_first_rejection(tmp_path):
    (tmp_path / "x.jsonl").write_text("{bad\n")
    assert (
        data_process.main(
            [
                "--xlam",
                str(tmp_path / "x.jsonl"),
                "--strict",
                "--output-dir",
                str(tmp_path),
                "--no-progress",
                "--log-level",
                "ERROR",
            ]
        )
        == 2
    )


def test_no_input_is_a_usage_error(tmp_path):
    assert data_process.main(["--output-dir", str(tmp_path), "--log-level", "ERROR"]) == 2


good_xlam = st.fixed_dictionaries({"query": st.text(min_size=1).filter(str.strip)})
bad_xlam = st.one_of(
    st.fixed_dictionaries({"query": st.just("q"), "answers": st.text(), "tools": st.text()}),
    st.dictionaries(st.sampled_from(["query", "answers", "tools", "id"]), st.integers() | st.none() | st.text()),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(st.tuples(st.booleans(), good_xlam, bad_xlam), max_size=12))
def test_accounting_invariant_under_random_bad_rows(rows):
    report = Report()
    stage = data_process.Stage1(options("improved"), report, _Sink(), bar_line=None)
    expected_good = 0
    for index, (is_good, good, bad) in enumerate(rows):
        row = dict(good, answers='[{"name": "f", "arguments": {}}]', tools='[{"name": "f", "parameters": {}}]')
        stage.report.source("xlam").rows_read += 1
        stage.process_row("xlam", row if is_good else bad, f"row {index}", None)
        expected_good += is_good
    counts = report.sources.get("xlam")
    assert report.invariant_errors() == []
    if counts:
        assert counts.samples_kept >= expected_good
        assert counts.rows_read == counts.rows_used + sum(counts.rows_rejected.values())


class _Sink:
    def write(self, text):
        json.loads(text)


def test_xlam_row_rejects_non_object_arguments():
    row = {"query": "q", "answers": '[{"name": "f", "arguments": []}]', "tools": '[{"name": "f"}]'}
    with pytest.raises(RowRejected, match="malformed_answer"):
        xlam.process_row(row, options("faithful"))


def test_table_1_is_printed(shared_fixtures, tmp_path, capsys):
    run_stage1(tmp_path, "--toolace", str(shared_fixtures / "toolace" / "hub_format_row2.json"))
    printed = capsys.readouterr().out
    assert "ToolACE single" in printed and "10500" in printed and "8183" in printed and "60000" in printed


# --------------------------------------------------------------------------- speed shortcuts give the same bytes


TRICKY_TOOL_LISTS = [
    [{"name": "f", "description": "plain", "parameters": {"q": {"type": "str"}}}],
    [{"name": "f", "description": "a }, { b"}, {"name": "g", "description": '}, {"name": 1}'}],
    [{"name": "f", "parameters": {"items": [{"a": 1}, {"b": [2, {"c": None}]}]}}, {"name": "g", "parameters": {}}],
    [{"name": "f\u00e9\U0001f600", "default": 1.5e-7, "big": 123456789012345678901234567890}, {"name": "g"}],
]


@pytest.mark.parametrize("tools", TRICKY_TOOL_LISTS)
@pytest.mark.parametrize("separators", [None, (",", ":"), (",  ", ": ")])
def test_decode_object_list_matches_decode_json_list(tools, separators):
    from records import decode_json_list, decode_object_list

    for ensure_ascii in (True, False):
        text = json.dumps(tools, separators=separators, ensure_ascii=ensure_ascii)
        items, texts, _ = decode_json_list(text)
        shortcut = decode_object_list(text)
        assert shortcut is None or shortcut == (items, texts)
        if separators is None and ensure_ascii and tools is TRICKY_TOOL_LISTS[0]:
            assert shortcut is not None  # the common case takes the shortcut


def test_record_encoder_is_byte_identical_to_json_dumps():
    from records import RecordEncoder, normalized_tools

    encoder = RecordEncoder()
    for tools in TRICKY_TOOL_LISTS:
        texts = [json.dumps(tool) for tool in tools]
        shared = normalized_tools([json.loads(t) for t in texts], texts)
        for tool_list in (tools, shared, shared, list(shared), [json.loads(t) for t in texts]):
            record = {
                "id": "xlam",
                "raw_system": DEFAULT_PREAMBLE,
                "tools": tool_list,
                "conversations": [{"from": "human", "value": 'caf\u00e9 "q" \\ \n'}],
                "answer": [{"name": "f", "arguments": {"n": 10**30, "x": 0.1, "b": True, "z": None}}],
                "source": "xlam",
                "origin": "x.json#1",
            }
            assert encoder.encode(record) == json.dumps(record)
    assert encoder.encode({}) == "{}"
    assert encoder.encode({1: "a", "tools": []}) == json.dumps({1: "a", "tools": []})


def _stage1_files(out):
    report = json.loads((out / "report.json").read_text())
    report.pop("seconds")
    report = json.loads(json.dumps(report).replace(str(out), "OUT"))
    return (out / "unified.jsonl").read_bytes(), (out / "rejections.jsonl").read_bytes(), report


def test_two_processes_write_the_same_files_as_one(shared_fixtures, tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"query": "q"}\n{broken\n')
    inputs = [
        "--toolace",
        str(shared_fixtures / "toolace" / "hub_format_row2.json"),
        str(shared_fixtures / "toolace" / "sharegpt_func_fixed_rows_0-49.json"),
        str(tmp_path / "missing.json"),
        "--xlam",
        str(shared_fixtures / "xlam" / "distilabel_sample_rows.json"),
        str(bad),
        str(shared_fixtures / "xlam" / "audited_rows.json"),
    ]
    results = []
    for workers in ("1", "2"):
        out = tmp_path / f"w{workers}"
        flags = ["--workers", workers, "--irrelevance-rate", "0.5", "--output-dir", str(out), "--no-progress"]
        assert data_process.main([*inputs, *flags, "--log-level", "ERROR"]) == 1  # one input is missing
        results.append(_stage1_files(out))
    assert results[0] == results[1]
    assert not list((tmp_path / "w2").glob("*part*"))


@pytest.mark.parametrize("mode", ["faithful", "improved"])
def test_every_source_accounts_for_every_row_and_call_turn(shared_fixtures, tmp_path, mode):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"query": "q"}\n{broken\n[1]\n')
    dialog = toolace_row([{"from": "user", "value": "q"}, {"from": "assistant", "value": "[get_weather(city=)]"}])
    (tmp_path / "t.json").write_text(json.dumps([dialog, {"system": "no tools", "conversations": []}]))
    _, _, report = run_stage1(
        tmp_path,
        "--mode",
        mode,
        "--include-nocall",
        "--toolace",
        str(shared_fixtures / "toolace" / "hub_format_row2.json"),
        str(shared_fixtures / "toolace" / "sharegpt_func_fixed_rows_0-49.json"),
        str(tmp_path / "t.json"),
        "--xlam",
        str(shared_fixtures / "xlam" / "audited_rows.json"),
        str(bad),
    )
    assert set(report["sources"]) == {"toolace", "xlam"}
    for name, counts in report["sources"].items():
        assert counts["rows_read"] == counts["rows_used"] + sum(counts["rows_rejected"].values()), name
        assert counts["call_turns"] == counts["samples_kept"] + sum(counts["call_turns_rejected"].values()), name
        assert counts["rows_read"] == sum(entry["rows"] for entry in counts["inputs"]), name
    assert report["sources"]["xlam"]["rows_rejected"] == {"missing_field": 1, "malformed_json": 1, "not_an_object": 1}
    assert report["invariant_errors"] == []


# --------------------------------------------------------------------------- Hammer-style masking (--mask-rate)


def masking_record():
    tools = [
        {
            "name": "get_weather",
            "description": "Weather.",
            "parameters": {
                "type": "object",
                "properties": {
                    "city": {"type": "string", "default": "paris"},
                    "days": {"type": "integer", "default": 3},
                    "scale": {"type": "number", "default": 1.5},
                    "unit": {"type": "string", "default": "c"},
                },
                "required": [],
            },
        },
        {"name": "book", "description": "Book.", "parameters": {"id": {"type": "int", "default": 7}}},  # xLAM form
    ]
    return {
        "id": "xlam",
        "raw_system": DEFAULT_PREAMBLE,
        "tools": tools,
        "conversations": [{"from": "human", "value": "Weather in Paris (paris, PARIS) for 3 days; book 8"}],
        "answer": [
            {"name": "get_weather", "arguments": {"city": "paris", "days": 3, "scale": 1.5, "unit": "f"}},
            {"name": "book", "arguments": {"id": 8}},
        ],
    }


def test_masking_renames_consistently_and_perturbs_only_default_values():
    import random

    import augmentation

    original = masking_record()
    masked = augmentation.mask_names(original, random.Random(0), 1.0)
    assert original == masking_record()  # the input is not touched
    weather, book = masked["tools"]
    assert {weather["name"], book["name"]}.isdisjoint({"get_weather", "book"})
    call, book_call = masked["answer"]
    assert call["name"] == weather["name"] and book_call["name"] == book["name"]
    properties = weather["parameters"]["properties"]
    assert set(call["arguments"]) == set(properties) and len(properties) == 4
    assert "city" not in properties and weather["parameters"]["required"] == []
    by_default = {spec["default"]: name for name, spec in properties.items()}
    assert "c" in by_default and call["arguments"][by_default["c"]] == "f"  # answer differs from default: kept
    new_city = next(v for k, v in call["arguments"].items() if properties[k]["type"] == "string" and v != "f")
    assert len(new_city) == 5 and new_city != "paris" and properties[by_default[new_city]]["default"] == new_city
    new_days = next(v for v in call["arguments"].values() if type(v) is int)
    assert 4 <= new_days <= 7 and new_days in by_default
    new_scale = next(v for v in call["arguments"].values() if type(v) is float)
    assert 1.5 <= new_scale < 2.5 and new_scale in by_default
    assert list(book_call["arguments"].values()) == [8]  # 8 != default 7: kept
    assert list(book["parameters"].values())[0]["default"] == 7
    query = masked["conversations"][0]["value"]
    assert "paris" not in query.lower() and new_city.capitalize() in query and new_city.upper() in query
    assert f"for {new_days} days" in query and query.endswith("book 8")
    assert masked["augmentation"] == "masked"


def test_masking_is_seeded_and_off_at_rate_zero():
    import random

    import augmentation

    first = augmentation.mask_names(masking_record(), random.Random(3), 1.0)
    assert first == augmentation.mask_names(masking_record(), random.Random(3), 1.0)
    assert augmentation.mask_names(masking_record(), random.Random(3), 0.0) is None


# --------------------------------------------------------------------------- one JSON list cut between two processes


def _json_list_variants(tmp_path, fixtures):
    rows = [
        json.dumps(row, ensure_ascii=False)
        for row in json.loads((fixtures / "xlam" / "audited_rows.json").read_text())[:6]
    ]
    texts = {
        "valid": "[" + ", ".join(rows) + "]",
        "bad_element": "[" + ", ".join([*rows[:3], "[1]", rows[3], '{"query": broken}', *rows[4:]]) + "]",
        "bad_separator": "[\n" + ",\n".join(rows[:3]) + " ; " + ", ".join(rows[3:]) + "]",
    }
    paths = {}
    for name, text in texts.items():
        paths[name] = tmp_path / f"{name}.json"
        paths[name].write_text("\ufeff" + text if name == "valid" else text, encoding="utf-8")
    return paths


def _read_window(path, window):
    import raw_inputs

    rows, error = [], None
    try:
        for raw in raw_inputs.iter_raw_rows(str(path), window):
            rows.append((raw.position, raw.row, raw.error))
    except raw_inputs.InputError as exc:
        error = str(exc)
    return rows, error


@pytest.mark.parametrize("chunk", [7, 1 << 20])
def test_json_list_windows_tile_the_file_and_report_each_error_once(shared_fixtures, tmp_path, chunk, monkeypatch):
    import raw_inputs

    monkeypatch.setattr(raw_inputs, "CHUNK_CHARS", chunk)  # 7: every element spans several reads
    for name, path in _json_list_variants(tmp_path, shared_fixtures).items():
        whole, whole_error = _read_window(path, None)
        assert (whole_error is None) == (name == "valid"), name
        size = raw_inputs.json_list_size(str(path))
        assert size == path.stat().st_size
        for cut in sorted({0, 1, size // 3, size // 2, size - 1, size, *range(0, size, max(1, size // 40))}):
            head, head_error = _read_window(path, (0, cut))
            tail, tail_error = _read_window(path, (cut, 4 * size))
            assert head + tail == whole, (name, cut)
            assert [error for error in (head_error, tail_error) if error] == ([whole_error] if whole_error else [])


def test_json_list_size_only_for_json_list_files(tmp_path):
    import raw_inputs

    (tmp_path / "lines.json").write_text('{"a": 1}\n')
    (tmp_path / "list.json").write_text(' [{"a": 1}]')
    (tmp_path / "rows.jsonl").write_text('[{"a": 1}]\n')
    assert raw_inputs.json_list_size(str(tmp_path / "list.json")) == 11
    for name in ("lines.json", "rows.jsonl", "missing.json"):
        assert raw_inputs.json_list_size(str(tmp_path / name)) is None
    with pytest.raises(ValueError, match="needs a JSON list file"):
        list(raw_inputs.iter_raw_rows(str(tmp_path / "rows.jsonl"), (0, 5)))


def test_plan_splits_where_the_two_processes_get_even_work(tmp_path):
    import parallel_stage1

    files = {"t.json": 50_000, "x.jsonl": 3_000, "x.json": 200_000, "small.json": 20_000}
    for name, size in files.items():
        (tmp_path / name).write_text("[" + " " * (size - 2) + "]" if name.endswith(".json") else "{}\n" * (size // 3))
    named = (("toolace", "t.json"), ("xlam", "x.jsonl"), ("xlam", "x.json"))
    toolace_job, lines_job, list_job = [(source, str(tmp_path / name), None) for source, name in named]
    jobs = [toolace_job, lines_job, list_job]
    plan = parallel_stage1.plan_split(jobs, keep_xlam_together=False)
    (*_, (start, cut)), (_, spec, _, (rest, end)) = plan.head[-1], plan.tail[0]
    assert plan.head[:2] == [(*toolace_job, None), (*lines_job, None)] and len(plan.tail) == 1
    assert start == 0 and 0 < cut == rest < 200_000 < end and spec == list_job[1]
    costs, skip = parallel_stage1.COSTS["improved"], parallel_stage1.SKIP_COST
    here = costs["toolace"] * 50_000 + costs["xlam"] * (3_000 + cut)
    there = skip * cut + costs["xlam"] * (200_000 - cut)
    assert here == pytest.approx(there, rel=1e-3) and here == pytest.approx(plan.load, rel=1e-3)
    # with augmentation every xLAM row stays in the forked process: the split falls where the sources meet
    together = parallel_stage1.plan_split(jobs, keep_xlam_together=True)
    assert together.head == [(*toolace_job, None)] and together.tail == [(*lines_job, None), (*list_job, None)]
    # faithful ToolACE parsing costs more: the head takes less of the list
    small = [("toolace", str(tmp_path / "small.json"), None), list_job]
    cuts = [parallel_stage1.plan_split(small, False, mode).head[-1][3][1] for mode in ("improved", "faithful")]
    assert cuts[1] < cuts[0]
    # one input that cannot be cut (JSON lines), or one that must stay whole: one process
    assert parallel_stage1.plan_split([lines_job], keep_xlam_together=False) is None
    assert parallel_stage1.plan_split([list_job], keep_xlam_together=True) is None
    # inputs of unknown size (hub names): split where the sources meet
    hub = parallel_stage1.plan_split([("toolace", "o/t", None), ("xlam", "o/x", None)], False)
    assert hub.head == [("toolace", "o/t", None, None)] and hub.tail == [("xlam", "o/x", None, None)]


def test_split_inside_a_json_list_gives_the_same_files_as_one_process(shared_fixtures, tmp_path, monkeypatch):
    import parallel_stage1

    variants = _json_list_variants(tmp_path, shared_fixtures)
    toolace_input = str(shared_fixtures / "toolace" / "sharegpt_func_fixed_rows_0-49.json")
    xlam_first = str(shared_fixtures / "xlam" / "distilabel_sample_rows.json")
    for name, path in variants.items():
        inputs = ["--toolace", toolace_input, "--xlam", xlam_first, str(path), "--no-progress", "--log-level", "ERROR"]
        serial = tmp_path / f"{name}-serial"
        code = data_process.main([*inputs, "--workers", "1", "--output-dir", str(serial)])
        expected = _stage1_files(serial)
        size = path.stat().st_size
        jobs = [("toolace", toolace_input, None, None), ("xlam", xlam_first, None, None)]
        plans = [parallel_stage1.Plan(jobs[:1], [jobs[1], ("xlam", str(path), None, None)], 0.0)]
        for cut in (1, size // 4, size // 2, size - 2):
            last = ("xlam", str(path), None)
            plans.append(parallel_stage1.Plan([*jobs, (*last, (0, cut))], [(*last, (cut, 4 * size))], 0.0))
        for k, plan in enumerate(plans):
            monkeypatch.setattr(data_process, "plan_split", lambda jobs, together, mode, plan=plan: plan)
            out = tmp_path / f"{name}-{k}"
            assert data_process.main([*inputs, "--workers", "2", "--output-dir", str(out)]) == code
            assert _stage1_files(out) == expected, (name, plan)
            assert sorted(p.name for p in out.iterdir()) == ["rejections.jsonl", "report.json", "unified.jsonl"]


def test_invalid_utf8_inside_a_json_list_is_an_input_error(shared_fixtures, tmp_path, monkeypatch):
    import raw_inputs

    monkeypatch.setattr(raw_inputs, "CHUNK_CHARS", 64)  # the bad byte arrives in a later read
    rows = json.loads((shared_fixtures / "xlam" / "audited_rows.json").read_text())[:3]
    text = ("[" + (", " + " " * 5000).join(json.dumps(row) for row in rows) + "]").encode()  # > one 4 KB read
    (tmp_path / "x.json").write_bytes(text[:-40] + b"\xff\xfe" + text[-40:])
    code, records, report = run_stage1(tmp_path, "--xlam", str(tmp_path / "x.json"), "--workers", "1")
    assert code == 1
    entry = report["sources"]["xlam"]["inputs"][0]
    assert "not UTF-8 text" in entry["error"] and entry["rows"] == len(records) >= 1  # the rows before it are kept
    assert report["rejection_examples"] == {"xlam/input/input_unreadable": [str(tmp_path / "x.json")]}


def test_a_killed_run_leaves_the_previous_complete_output(shared_fixtures, tmp_path, monkeypatch):
    xlam_input = str(shared_fixtures / "xlam" / "audited_rows.json")
    code, records, _ = run_stage1(tmp_path, "--xlam", xlam_input)
    before = (tmp_path / "unified" / "unified.jsonl").read_bytes()
    calls = []

    def interrupted(self, *args):
        calls.append(args)
        if len(calls) > 5:
            raise KeyboardInterrupt  # as Ctrl-C would, part way through
        return original(self, *args)

    original = data_process.Stage1.process_row
    monkeypatch.setattr(data_process.Stage1, "process_row", interrupted)
    with pytest.raises(KeyboardInterrupt):
        data_process.main(["--xlam", xlam_input, "--output-dir", str(tmp_path / "unified"), "--no-progress"])
    assert (tmp_path / "unified" / "unified.jsonl").read_bytes() == before and code == 0 and records
    assert (tmp_path / "unified" / "unified.partial.jsonl").stat().st_size < len(before)
