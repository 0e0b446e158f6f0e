"""eval/apibank.py on the real API-Bank level-1 fixtures: loaders, structural and official-rules scorers, stub run."""

from __future__ import annotations

import copy
import json

import apibank  # eval/ is on sys.path via tests/conftest.py
import pytest

from tests.conftest import require_shared_fixtures
from tool_n1.openai_stub import Action, OpenAIStub
from tool_n1.parsing import parse_response
from tool_n1.prompts import format_response


@pytest.fixture(scope="module")
def official():
    folder = require_shared_fixtures("apibank", "damo_convai")
    return apibank.load(folder / "level-1-api.json")


@pytest.fixture(scope="module")
def hammer():
    return apibank.load(require_shared_fixtures("apibank", "hammer_original") / "apibank_l1.json")


def test_counts_and_formats_agree(official, hammer):
    assert len(official) == len(hammer) == 399
    assert len({s.dedup_key for s in official}) == len({s.dedup_key for s in hammer}) == 389
    assert [s.answer for s in official] == [s.answer for s in hammer]  # typed ground truth from the dialogues
    assert official[0].answer["name"] == "ModifyRegistration"
    assert official[0].transcript.endswith("Generate API Request:\n")
    assert official[0].tools[2]["parameters"]["required"] == [
        "appointment_id",
        "new_appointment_date",
        "new_appointment_doctor",
    ]


def test_every_api_is_included_or_excluded(official):
    excluded = {api for apis in apibank.EXCLUDED_REASONS.values() for api in apis}
    assert not excluded & set(apibank.OFFICIAL_RULES)
    assert {s.api for s in official} <= excluded | set(apibank.OFFICIAL_RULES)


def test_echo_ceiling(official, hammer):
    for samples in (official, hammer):
        report = apibank.score(samples, apibank.echo_outputs(samples))
        assert report["structural_all"]["correct"] == 399
        assert report["structural_distinct"] == {**report["structural_distinct"], "correct": 389, "total": 389}
        assert report["official_rules_subset"]["correct"] == report["official_rules_subset"]["total"] == 82


def _score(sample, call):
    calls = parse_response(format_response([call]), block="first").calls
    return apibank.structural(calls, sample.answer)[0], apibank.official_rules(calls, sample)


def test_perturbations(official):
    sample = next(s for s in official if s.api == "QueryStock")
    good = copy.deepcopy(sample.answer)
    assert _score(sample, good) == (True, (True, ""))
    assert _score(sample, {**good, "name": "QueryBalance"}) == (False, (False, "API_NAME_MISMATCH"))
    wrong = {**good, "arguments": {**good["arguments"], "stock_code": "ZZZZ"}}
    assert _score(sample, wrong) == (False, (False, "INPUT_MISMATCH"))
    missing = {**good, "arguments": {k: v for k, v in good["arguments"].items() if k != "date"}}
    assert _score(sample, missing) == (False, (False, "MISS_INPUT_ARGUMENT"))
    extra = {**good, "arguments": {**good["arguments"], "market": "NYSE"}}
    assert _score(sample, extra) == (False, (False, "INVALID_INPUT_PARAMETER"))
    # official rules normalise case and whitespace of the stock code; ours is case-sensitive
    lower = {**good, "arguments": {**good["arguments"], "stock_code": " " + good["arguments"]["stock_code"].lower()}}
    assert _score(sample, lower) == (False, (True, ""))
    bad_date = {**good, "arguments": {**good["arguments"], "date": "March 3rd"}}
    assert _score(sample, bad_date) == (False, (False, "HAS_EXCEPTION"))


def test_type_changes_follow_the_documented_normalisation(official):
    sample = next(s for s in official if s.api == "RecordHealthData")
    args = sample.answer["arguments"]
    typed = {**args, "user_id": int(args["user_id"]), "health_data": eval(args["health_data"])}  # noqa: S307
    assert apibank.structural([{"name": sample.api, "arguments": typed}], sample.answer) == (True, "")
    assert apibank.official_rules(None, sample) is None  # stateful API: outside the official-rules subset
    wrong_type = {**args, "health_data": {"blood_pressure": "120/80"}}
    assert not apibank.structural([{"name": sample.api, "arguments": wrong_type}], sample.answer)[0]
    assert not apibank.value_matches(True, "12345") and apibank.value_matches(True, "True")
    assert apibank.value_matches(3, "3") and not apibank.value_matches("3 ", "4")
    assert not apibank.structural([sample.answer, sample.answer], sample.answer)[0]  # exactly one call


def test_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="not found"):
        apibank.load(tmp_path / "nope.json")
    (tmp_path / "x.json").write_text(json.dumps([{"a": 1}]))
    with pytest.raises(ValueError, match="unknown format"):
        apibank.load(tmp_path / "x.json")
    (tmp_path / "y.json").write_text(
        json.dumps([{"file": "f", "id": 0, "instruction": "", "input": "", "expected_output": ""}])
    )
    with pytest.raises(FileNotFoundError, match="dialogue folder"):
        apibank.load(tmp_path / "y.json")


def test_end_to_end_against_stub(official, tmp_path):
    samples = official[:20]
    plans = {}
    for s in samples:
        query = apibank.messages_for(s)[1]["content"]
        reply = Action.ok(format_response([s.answer], think="stub"))
        assert plans.setdefault(query, [reply]) == [reply]  # same transcript → same answer in this slice
    data = require_shared_fixtures("apibank", "damo_convai") / "level-1-api.json"
    with OpenAIStub(plans) as stub:
        code = apibank.main(
            [
                "--data",
                str(data),
                "--limit",
                "20",
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
        assert stub.state.max_in_flight <= 4
        sent = stub.state.requests[0].body
    assert code == 0 and sent["messages"][0]["role"] == "system" and "<tools>" in sent["messages"][0]["content"]
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["structural_all"]["correct"] == 20 and report["reply_status"]["missing"] == 0
    assert report["scope"] == "first 20 samples (--limit)" and report["level"] == 1
    raw = [json.loads(line) for line in (tmp_path / "raw.jsonl").read_text().splitlines()]
    assert sorted(r["id"] for r in raw) == sorted(s.id for s in samples)
    # offline rescoring of the saved outputs gives the same numbers
    assert (
        apibank.main(
            [
                "--data",
                str(data),
                "--limit",
                "20",
                "--predictions",
                str(tmp_path / "raw.jsonl"),
                "--output",
                str(tmp_path / "re"),
            ]
        )
        == 0
    )
    again = json.loads((tmp_path / "re" / "report.json").read_text())
    assert again["structural_all"] == report["structural_all"]
