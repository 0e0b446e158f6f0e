"""eval/acebench.py on the real ACEBench Normal fixtures: loader, checker rules, paper-era answers, stub run."""

from __future__ import annotations

import copy
import json

import acebench  # eval/ is on sys.path via tests/conftest.py
import pytest

from tests.conftest import require_shared_fixtures
from tool_n1.openai_stub import Action, OpenAIStub
from tool_n1.parsing import parse_response


@pytest.fixture(scope="module")
def data_dir():
    return require_shared_fixtures("acebench", "data_en")


@pytest.fixture(scope="module")
def rows(data_dir):
    return acebench.load(data_dir)


def _row(rows, row_id):
    return next(r for r in rows if r.id == row_id)


def test_loader_counts_and_quirks(rows):
    counts = {c: sum(r.category == c for r in rows) for c in acebench.CATEGORIES}
    assert counts == {**{c: 50 for c in acebench.ATOM}, **{c: 100 for c in acebench.SINGLE_TURN}}
    assert isinstance(_row(rows, "normal_atom_bool_11").answer, list)
    assert isinstance(_row(rows, "normal_atom_object_short_42").answer, list)
    parallel = [r for r in rows if r.category == "normal_single_turn_parallel_function"]
    assert sum(len(r.answer) for r in parallel) == 251
    # distractor docs with "arguments" still become tools with a parameters schema
    for row in rows:
        assert all(t["parameters"]["type"] == "object" for t in acebench.tools_for(row))


def test_echo_scores_100_except_known_unsatisfiable(rows):
    report = acebench.score(rows, acebench.echo_outputs(rows))
    assert (
        sorted(report["failed"]) == sorted(acebench.KNOWN_UNSATISFIABLE) == ["normal_single_turn_parallel_function_42"]
    )
    assert report["atom"] == 100.0 and report["single_turn"] == 99.5 and report["overall_mean_of_groups"] == 99.75


def test_paper_era_answers_swap_six_lines(data_dir, rows):
    changes = require_shared_fixtures("acebench") / "changes_since_e6db74b.jsonl"
    old = {r.id: r for r in acebench.load(data_dir, changes=changes)}
    changed = [
        r.id for r in rows if (r.answer, r.question, r.time) != (old[r.id].answer, old[r.id].question, old[r.id].time)
    ]
    assert sorted(changed) == sorted(json.loads(line)["id"] for line in changes.read_text().splitlines())
    assert old["normal_single_turn_single_function_0"].time == ""
    assert not isinstance(old["normal_atom_object_short_42"].answer, list)


def _check(row, calls):
    return acebench.check(row, calls)


def test_perturbations(rows):
    row = _row(rows, "normal_single_turn_single_function_0")
    name, args = next(iter(row.answer.items()))
    good = {"name": name, "arguments": copy.deepcopy(args)}
    assert _check(row, [good])
    assert not _check(row, [{**good, "name": "Other_function"}])  # wrong name
    assert not _check(row, [good, good])  # wrong number of calls
    assert not _check(row, [{**good, "arguments": {**args, "eclipseType": "partial"}}])  # wrong value
    assert not _check(row, [{**good, "arguments": {k: v for k, v in args.items() if k != "location"}}])  # missing arg
    assert not _check(row, [{**good, "arguments": {**args, "extra": 1}}])  # parameter outside schema/answer
    assert not _check(row, [{**good, "arguments": {**args, "location": "Athens"}}])  # type change object → string
    assert _check(row, [{**good, "arguments": {**args, "eclipseType": "Total eclipse"}}])  # substring rule
    assert not _check(row, None)


def test_parallel_order_and_alternatives(rows):
    row = next(r for r in rows if r.category.endswith("parallel_function") and len(r.answer) == 2)
    calls = [{"name": acebench.re.sub(r"_\d+$", "", k), "arguments": v} for k, v in row.answer.items()]
    assert _check(row, calls) and _check(row, calls[::-1])
    alt = _row(rows, "normal_atom_bool_11")
    for answer in alt.answer:
        assert _check(alt, [{"name": k, "arguments": v} for k, v in answer.items()])


def test_type_rules(rows):
    row = next(r for r in rows if r.category == "normal_atom_bool")
    name, args = next(iter(row.answer.items()))
    key = next(k for k, v in args.items() if isinstance(v, bool))
    assert _check(row, [{"name": name, "arguments": {**args, key: str(args[key]).lower()}}])  # "true" → True
    # the official checker type-checks booleans and numbers but never compares their values (kept as the rules say)
    assert _check(row, [{"name": name, "arguments": {**args, key: not args[key]}}])
    assert not _check(row, [{"name": name, "arguments": {**args, key: "maybe"}}])
    number = next(r for r in rows if r.category == "normal_atom_number")
    name, args = next(iter(number.answer.items()))
    key = next(k for k, v in args.items() if isinstance(v, (int, float)) and not isinstance(v, bool))
    assert not _check(number, [{"name": name, "arguments": {**args, key: str(args[key]) + "x"}}])


def test_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="data folder"):
        acebench.load(tmp_path / "missing")
    (tmp_path / "data_normal_atom_bool.json").write_text("not json\n")
    with pytest.raises(ValueError, match="not a JSON line"):
        acebench.load(tmp_path, ["normal_atom_bool"])
    with pytest.raises(SystemExit):
        acebench.main(["--data", str(tmp_path), "--output", str(tmp_path / "o"), "--answers", "paper-era"])


def test_end_to_end_against_stub(data_dir, rows, tmp_path):
    picked = [
        r
        for c in ("normal_atom_list", "normal_single_turn_parallel_function")
        for r in [x for x in rows if x.category == c][:10]
    ]
    echo = acebench.echo_outputs(picked)
    plans = {acebench.messages_for(r)[1]["content"]: [Action.ok(echo[r.id])] for r in picked}
    assert len(plans) == 20
    with OpenAIStub(plans) as stub:
        code = acebench.main(
            [
                "--data",
                str(data_dir),
                "--categories",
                "normal_atom_list",
                "normal_single_turn_parallel_function",
                "--limit",
                "10",
                "--base-url",
                stub.base_url,
                "--model",
                "stub",
                "--output",
                str(tmp_path),
                "--concurrency",
                "4",
                "--timeout",
                "10",
                "--retries",
                "0",
            ]
        )
    assert code == 0
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["per_category"]["normal_atom_list"]["correct"] == 10
    assert report["per_category"]["normal_single_turn_parallel_function"]["correct"] == 10
    assert report["reply_status"]["missing"] == 0 and report["data_version"].startswith("current")
    assert report["scope"] == "first 10 rows of each category (--limit)"
    assert parse_response(echo[picked[0].id], block="first").calls is not None
