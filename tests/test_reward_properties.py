"""The reward never raises on data, keeps one key set, is order-invariant, picklable and thread/process safe."""

import json
import pickle
import random
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tool_n1.prompts import format_response
from tool_n1.reward import PROMPT_TYPE_TO_VARIANT, RESULT_KEYS, VARIANTS, compute_score

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=10,
)
CALLS = st.lists(
    st.fixed_dictionaries({"name": st.sampled_from(["f", "g", "get_weather"]), "arguments": JSON_VALUES}), max_size=4
)
PIECES = st.sampled_from(
    [
        "<think>",
        "</think>",
        "<tool_call>",
        "</tool_call>",
        "<|im_start|>assistant\n",
        "<|im_end|>",
        "[",
        "]",
        "{",
        "}",
        '"name"',
        '"arguments"',
        ":",
        ",",
        "5",
        "true",
        "null",
        '"',
        "\\",
        " ",
        "x",
        '"f"',
        "[]",
        "{}",
        "1.0",
    ]
)
RESPONSES = st.one_of(
    st.text(max_size=200),
    st.lists(PIECES, max_size=40).map("".join),
    st.builds(lambda calls, junk: format_response(calls, "t") + junk, CALLS, st.text(max_size=20)),
    st.builds(lambda value: f"<think>x</think><tool_call>{json.dumps(value)}</tool_call>", JSON_VALUES),
)
GROUND_TRUTHS = st.one_of(CALLS.map(json.dumps), st.text(max_size=30), JSON_VALUES.map(json.dumps))
EXTRA_INFOS = st.one_of(
    st.none(), st.just({}), st.builds(dict, prompt_type=st.sampled_from([*PROMPT_TYPE_TO_VARIANT, "foo", None, 3]))
)


def check_result(result):
    assert {k: type(v) for k, v in result.items()} == RESULT_KEYS
    assert -0.2 <= result["score"] <= 1.2


@pytest.mark.parametrize("variant", VARIANTS)
@settings(max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(response=RESPONSES, ground_truth=GROUND_TRUTHS)
def test_never_raises(variant, response, ground_truth):
    for mode in ("faithful", "improved"):
        check_result(compute_score("toolcall", response, ground_truth, variant=variant, mode=mode))


@settings(max_examples=500, deadline=None)
@given(response=RESPONSES, ground_truth=GROUND_TRUTHS, extra_info=EXTRA_INFOS)
def test_never_raises_on_any_extra_info(response, ground_truth, extra_info):
    check_result(compute_score("toolcall", response, ground_truth, extra_info=extra_info))


def test_adversarial_inputs_score_zero_with_a_reason():
    gt = '[{"name": "f", "arguments": {}}]'
    cases = {
        "<think>x</think><tool_call>" + "[" * 5000 + "]" * 5000 + "</tool_call>": "nested too deeply",
        "<think>x</think><tool_call>" + "1" * 5000 + "</tool_call>": "invalid JSON value",
        "<think>x</think><tool_call>true</tool_call>": "JSON boolean",
        "<think>x</think>" + "<tool_call>" * 10_000: "no <tool_call> block",
    }
    for response, reason in cases.items():
        result = compute_score("toolcall", response, gt)
        assert result["score"] == 0.0 and reason in result["parse_error"], (response[:40], result)
    assert "ground truth" in compute_score("toolcall", "<think/>", "{not json")["parse_error"]
    assert (
        "comparison failed"
        in compute_score("toolcall", format_response([{"name": "f", "arguments": {}}]), '[{"name": "f"}]')[
            "parse_error"
        ]
    )
    assert compute_score("toolcall", None, gt)["parse_error"] == "response is a NoneType, not a string"


ORIGINAL_RAISED = {
    "JSON nested 5,000 deep": "<think>x</think><tool_call>" + "[" * 5000 + "]" * 5000 + "</tool_call>",
    "integer of 5,000 digits": "<think>x</think><tool_call>" + "9" * 5000 + "</tool_call>",
    "JSON string holding 5,000 digits": "<think>x</think><tool_call>" + json.dumps("9" * 5000) + "</tool_call>",
    "JSON number": "<think>x</think><tool_call>5</tool_call>",
}


@pytest.mark.parametrize("label", ORIGINAL_RAISED)
def test_where_the_original_raised_every_variant_scores_zero(label):
    # One rule: the original crashed on these rows, so no variant (not even the partial ones' think bonus) and no
    # mode gives them anything.
    gt = '[{"name": "f", "arguments": {}}]'
    for mode in ("faithful", "improved"):
        for variant in VARIANTS:
            result = compute_score("toolcall", ORIGINAL_RAISED[label], gt, variant=variant, mode=mode)
            assert result["score"] == 0.0, (label, variant, mode, result)
            assert "raised" in result["parse_error"], result


@pytest.mark.parametrize("prompt_type", [[], {}, ["qwen"], {"qwen": 1}, set(), 3.5, b"qwen", ("qwen",)])
def test_any_prompt_type_value_scores_zero_with_the_reason(prompt_type):
    good = format_response([{"name": "f", "arguments": {}}], "t")
    result = compute_score(
        "toolcall", good, '[{"name": "f", "arguments": {}}]', extra_info={"prompt_type": prompt_type}
    )
    check_result(result)
    assert result["score"] == 0.0 and "unknown prompt_type" in result["parse_error"]


def _call_dense_replies() -> dict[str, str]:
    """Replies of about 1 MB packed with calls, the costliest shapes for the comparison."""
    one = json.dumps({"name": "get_weather", "arguments": {"city": "Paris", "unit": "c"}})
    size = 1 << 20
    tiny = '{"name":"f","arguments":{}}'
    return {
        "one list of 1 MB": "<think>x</think><tool_call>["
        + ", ".join([one] * (size // (len(one) + 2)))
        + "]</tool_call>",
        "tiny calls": "<think>x</think><tool_call>[" + ",".join([tiny] * (size // 28)) + "]</tool_call>",
        "string arguments": "<think>x</think><tool_call>["
        + ",".join(['{"name":"f","arguments":"{\\"a\\":1}"}'] * (size // 40))
        + "]</tool_call>",
        "unhashable names": "<think>x</think><tool_call>["
        + ",".join(['{"name":[1],"arguments":{}}'] * (size // 28))
        + "]</tool_call>",
        "one call per block": "<think>x</think>" + f"<tool_call>{one}</tool_call>" * (size // (len(one) + 23)),
        "double-encoded list": "<think>x</think><tool_call>"
        + json.dumps("[" + ", ".join([one] * (size // (len(one) + 2))) + "]")
        + "</tool_call>",
    }


def test_call_dense_one_megabyte_replies_score_well_under_100_ms_cpu():
    import time

    gt = json.dumps([{"name": "get_weather", "arguments": {"city": "Paris", "unit": "c"}}])
    for label, reply in _call_dense_replies().items():
        assert len(reply) >= 900_000, label
        for mode in ("faithful", "improved"):
            for variant in ("binary", "partial_think_name"):
                best = float("inf")
                for _ in range(3):  # best of three: CPU time, but a loaded machine still adds cache misses
                    start = time.process_time()
                    result = compute_score("toolcall", reply, gt, variant=variant, mode=mode)
                    best = min(best, time.process_time() - start)
                check_result(result)
                assert best < 0.075, (label, mode, variant, f"{best * 1e3:.1f} ms")


def test_improved_mode_treats_hundreds_of_blocks_as_degenerate():
    from tool_n1.reward import MAX_BLOCKS

    call = '<tool_call>{"name": "f", "arguments": {}}</tool_call>'
    gt = json.dumps([{"name": "f", "arguments": {}}] * MAX_BLOCKS)
    at_limit = compute_score("toolcall", "<think>x</think>" + call * MAX_BLOCKS, gt, mode="improved")
    assert at_limit["score"] == 1.0
    gt_over = json.dumps([{"name": "f", "arguments": {}}] * (MAX_BLOCKS + 1))
    over = compute_score("toolcall", "<think>x</think>" + call * (MAX_BLOCKS + 1), gt_over, native_blocks=True)
    assert over["score"] == 0.0 and f"more than {MAX_BLOCKS}" in over["parse_error"]


def test_dispatch_follows_prompt_type_like_the_original():
    gt = '[{"name": "f", "arguments": {"x": 1}}]'
    good = format_response(json.loads(gt), "why")
    assert compute_score("toolcall", good, gt, extra_info={})["score"] == 1.0
    assert compute_score("toolcall", good, gt, extra_info=None)["score"] == 1.0
    assert compute_score("toolcall", good, gt, extra_info={"prompt_type": "qwen_lexico"})["score"] == 1.2
    unknown = compute_score("toolcall", good, gt, extra_info={"prompt_type": "foo"})
    assert unknown["score"] == 0.0 and "unknown prompt_type 'foo'" in unknown["parse_error"]
    # an explicit variant wins over the data's prompt_type
    assert (
        compute_score("toolcall", good, gt, extra_info={"prompt_type": "qwen_lexico"}, variant="binary")["score"]
        == 1.0
    )


def test_configuration_errors_raise():
    with pytest.raises(ValueError, match="binary_no_think"):
        compute_score("toolcall", "", "[]", variant="v0")
    with pytest.raises(ValueError, match="faithful, improved"):
        compute_score("toolcall", "", "[]", mode="fixed")


def test_extra_kwargs_from_verl_are_ignored():
    result = compute_score("toolcall", "<think>a</think><tool_call>[]</tool_call>", "[]", reward_router_address=None)
    assert result["score"] == 1.0


@settings(max_examples=300, deadline=None)
@given(calls=CALLS.filter(lambda c: len(c) > 1), seed=st.integers(0, 1000))
def test_score_is_invariant_to_call_order_and_key_order(calls, seed):
    gt = json.dumps(calls)
    shuffled = calls[:]
    random.Random(seed).shuffle(shuffled)
    reordered = [{"arguments": c["arguments"], "name": c["name"]} for c in shuffled]
    for mode in ("faithful", "improved"):
        assert compute_score("toolcall", format_response(reordered, "t"), gt, mode=mode)["score"] == 1.0


def _score_one(args):
    return compute_score(*args)["score"]


def test_picklable_and_usable_from_threads_and_processes():
    restored = pickle.loads(pickle.dumps(compute_score))
    gt = '[{"name": "f", "arguments": {"x": 1}}]'
    jobs = [("toolcall", format_response([{"name": "f", "arguments": {"x": i % 2}}], "t"), gt) for i in range(40)]
    expected = [float(i % 2 == 1) for i in range(40)]
    assert [restored(*job)["score"] for job in jobs] == expected
    with ThreadPoolExecutor(4) as pool:
        assert list(pool.map(_score_one, jobs)) == expected
    with ProcessPoolExecutor(2) as pool:
        assert list(pool.map(_score_one, jobs)) == expected
