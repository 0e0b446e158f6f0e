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


def test_xlam_audited_rows_all_kept_without_the_type_check(shared_fixtures, tmp_path):
    path = shared_fixtures / "xlam" / "audited_rows.json"
    for mode, flags in (("faithful", []), ("improved", ["--no-check-argument-types"])):
        code, records, _ = run_stage1(tmp_path / mode, "--xlam", str(path), "--mode", mode, *flags)
        assert code == 0 and len(records) == 40
    assert {r["origin"].rsplit("#", 1)[1] for r in records} == {str(i) for i in range(40)}
    # with it, two labels go: both judged "non_derivable" by the human audit of these rows (xLAM ids 51595, 41871)
    code, records, report = run_stage1(tmp_path / "checked", "--xlam", str(path))
    assert code == 0 and len(records) == 38
    assert report["rejection_examples"] == {"xlam/row/argument_type_mismatch": [f"{path}#10", f"{path}#13"]}


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
    samples = [record for _, record, _ in outcome["samples"]]
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
    assert [(turn, s["answer"] and s["answer"][0]["name"]) for turn, s, _ in with_nocall] == [
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
    faithful = toolace.process_dialog(row, options("faithful"))["samples"][0][1]["answer"]
    improved = toolace.process_dialog(row, options("improved"))["samples"][0][1]["answer"]
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
    stage = data_process.Stage1(options("improved"), report, _Sink(), False)
    expected_good = 0
    for index, (is_good, good, bad) in enumerate(rows):
        row = dict(good, answers='[{"name": "f", "arguments": {}}]', tools='[{"name": "f", "parameters": {}}]')
        stage.report.source("xlam").rows_read += 1
        outcome = data_process.row_outcome("xlam", None, row if is_good else bad, options("improved"))
        stage.take("xlam", outcome, f"row {index}")
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


def test_record_encoder_is_byte_identical_to_json_dumps():
    from records import RecordEncoder

    encoder = RecordEncoder()
    turns = [{"from": "human", "value": "q"}, {"from": "function_call", "value": "[]"}]
    for tools in TRICKY_TOOL_LISTS:
        for tool_list in (tools, tools, list(tools), [json.loads(json.dumps(t)) for t in tools]):
            record = {
                "id": "xlam",
                "raw_system": DEFAULT_PREAMBLE,
                "tools": tool_list,
                "conversations": [*turns, {"from": "human", "value": 'caf\u00e9 "q" \\ \n'}],
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


def test_the_engine_writes_the_same_files_as_the_local_loop(shared_fixtures, tmp_path):
    pytest.importorskip("datasets")
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
    for engine in ("local", "datasets"):
        out = tmp_path / engine
        flags = ["--engine", engine, "--workers", "2", "--irrelevance-rate", "0.5", "--mask-rate", "0.5"]
        assert data_process.main([*inputs, *flags, "--output-dir", str(out), "--no-progress"]) == 1  # one missing
        results.append(_stage1_files(out))
    assert results[0] == results[1]
    assert sorted(p.name for p in (tmp_path / "datasets").iterdir()) == [
        ".lock",
        "rejections.jsonl",
        "report.json",
        "unified.jsonl",
    ]


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
    expected = {"missing_field": 1, "malformed_json": 1, "not_an_object": 1}
    if mode == "improved":
        expected["argument_type_mismatch"] = 2  # two noisy labels of the audited rows
    assert report["sources"]["xlam"]["rows_rejected"] == expected
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
    call, book_call = masked["answer"]
    by_name = {tool["name"]: tool for tool in masked["tools"]}
    weather, book = by_name[call["name"]], by_name[book_call["name"]]
    assert {weather["name"], book["name"]}.isdisjoint({"get_weather", "book"}) and len(by_name) == 2
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


def test_masking_is_consistent_per_name_shuffles_tools_and_rewrites_descriptions():
    import random

    import augmentation

    record = masking_record()
    twin = {**record["tools"][0], "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}
    record["tools"].append(twin)  # a second tool of the same name
    record["tools"][0]["parameters"]["properties"]["unit"]["description"] = "unit, default c"
    orders = set()
    for seed in range(20):
        masked = augmentation.mask_names(record, random.Random(seed), 1.0)
        call = masked["answer"][0]
        tools = [tool for tool in masked["tools"] if tool["name"] == call["name"]]
        full, single = sorted((set(tool["parameters"]["properties"]) for tool in tools), key=len, reverse=True)
        assert len(single) == 1 and single < full and full == set(call["arguments"])  # city: one new name in both
        orders.add(tuple(len(tool["parameters"].get("properties", tool["parameters"])) for tool in masked["tools"]))
    assert len(orders) > 1  # the tool order is shuffled
    record = masking_record()
    record["answer"][0]["arguments"]["unit"] = "c"
    record["tools"][0]["parameters"]["properties"]["unit"]["description"] = "unit, default c"
    masked = augmentation.mask_names(record, random.Random(0), 1.0)
    tool = next(tool for tool in masked["tools"] if tool["name"] == masked["answer"][0]["name"])
    unit = next(
        spec for spec in tool["parameters"]["properties"].values() if spec.get("description", "").startswith("unit")
    )
    assert unit["description"] == "unit, default " + unit["default"] and unit["default"] != "c"


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


def _read(path):
    import raw_inputs

    return [(raw.position, raw.row, raw.error) for raw in raw_inputs.iter_raw_rows(str(path))]


def test_json_list_variants_read_the_same_at_any_chunk_size(shared_fixtures, tmp_path, monkeypatch):
    import raw_inputs

    variants = _json_list_variants(tmp_path, shared_fixtures)
    whole = {name: _read(path) for name, path in variants.items()}
    monkeypatch.setattr(raw_inputs, "CHUNK_CHARS", 7)  # every element spans several reads
    for name, path in variants.items():
        assert _read(path) == whole[name], name
    assert all(error is None for _, _, error in whole["valid"])
    assert [error for _, _, error in whole["bad_element"]][3:] == ["not_an_object", None, "malformed_json"]
    assert whole["bad_element"][-1][0].endswith("#5")  # the broken element, by its index; the rest is not read
    assert whole["bad_separator"][-1][2] == "malformed_json" and whole["bad_separator"][-1][0].endswith("#3")


def test_invalid_utf8_inside_a_json_list_rejects_that_element_only(shared_fixtures, tmp_path, monkeypatch):
    import raw_inputs

    monkeypatch.setattr(raw_inputs, "CHUNK_CHARS", 64)  # the bad byte arrives in a later read
    rows = json.loads((shared_fixtures / "xlam" / "audited_rows.json").read_text())[:3]
    text = ("[" + (", " + " " * 5000).join(json.dumps(row) for row in rows) + "]").encode()  # > one 4 KB read
    (tmp_path / "x.json").write_bytes(text[:-40] + b"\xff\xfe" + text[-40:])
    code, records, report = run_stage1(tmp_path, "--xlam", str(tmp_path / "x.json"), "--no-check-argument-types")
    assert code == 0 and len(records) == 2
    assert report["rejection_examples"] == {"xlam/row/invalid_utf8": [f"{tmp_path / 'x.json'}#2"]}


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

    original = data_process.Stage1.take
    monkeypatch.setattr(data_process.Stage1, "take", interrupted)
    with pytest.raises(KeyboardInterrupt):
        data_process.main(["--xlam", xlam_input, "--output-dir", str(tmp_path / "unified"), "--no-progress"])
    assert (tmp_path / "unified" / "unified.jsonl").read_bytes() == before and code == 0 and records
    assert (tmp_path / "unified" / "unified.partial.jsonl").stat().st_size < len(before)
