"""Possible answers of every single-turn AST category, rendered as Tool-N1 replies → our decoder → BFCL's checker.

Also the handler's prompts (the original's byte-exact test vector, the training prompt) and decoding rules.
"""

from __future__ import annotations

import hashlib

import pytest
from bfcl_synthetic import EXCLUSIONS, EXTRA_JAVA_EXCLUSIONS, SECTION_2_3

from tests.bfcl_support import bfcl_root

pytestmark = pytest.mark.eval_env

TOY_TOOL = {
    "name": "get_weather",
    "description": "Get weather.",
    "parameters": {
        "type": "dict",
        "properties": {"city": {"type": "string", "description": "City."}},
        "required": ["city"],
    },
}
KEY = "tool-n1/roundtrip"


@pytest.fixture(scope="module")
def bfcl():
    bfcl_root()
    import bfcl_handler
    import run_bfcl
    from bfcl_eval.constants.enums import Language
    from bfcl_eval.eval_checker.ast_eval.ast_checker import ast_checker
    from bfcl_eval.utils import load_dataset_entry, load_ground_truth_entry

    run_bfcl.register(KEY, "roundtrip", bfcl_handler.HandlerOptions())
    languages = {"python": Language.PYTHON, "java": Language.JAVA, "javascript": Language.JAVASCRIPT}
    return ast_checker, load_dataset_entry, load_ground_truth_entry, languages


def _check(bfcl, category, reply_for):
    import bfcl_synthetic as syn

    from tool_n1 import bfcl_decode

    ast_checker, load_prompts, load_answers, languages = bfcl
    prompts = load_prompts(category, include_prereq=False, include_language_specific_hint=False)
    answers = {a["id"]: a for a in load_answers(category)}
    failed = {}
    for prompt in prompts:
        reply = reply_for(answers[prompt["id"]], prompt, category)
        decoded = bfcl_decode.decode_ast(reply, "last")
        assert decoded == bfcl_decode.decode_ast(reply, "first")
        result = ast_checker(
            prompt["function"],
            decoded,
            answers[prompt["id"]]["ground_truth"],
            languages[syn.language_of(category)],
            category,
            KEY.replace("/", "_"),
        )
        if not result["valid"]:
            failed[prompt["id"]] = result["error_type"]
    return len(prompts), failed


def _render(answer, prompt, category):
    import bfcl_synthetic as syn

    return syn.render_reply(syn.render_calls(answer, prompt["function"], category))


EXPECTED_TOTALS = {
    "simple_python": 400,
    "simple_java": 100,
    "simple_javascript": 50,
    "multiple": 200,
    "parallel": 200,
    "parallel_multiple": 200,
    "live_simple": 258,
    "live_multiple": 1053,
    "live_parallel": 16,
    "live_parallel_multiple": 24,
}


@pytest.mark.parametrize("category", list(EXPECTED_TOTALS))
def test_possible_answers_pass_bfcl_checker(bfcl, category):
    total, failed = _check(bfcl, category, _render)
    assert total == EXPECTED_TOTALS[category]
    expected = {i for i in EXCLUSIONS if i.rsplit("_", 1)[0] == category}
    assert set(failed) == expected, f"{category}: pass {total - len(failed)}/{total}; unexpected {failed}"
    print(f"{category}: {total - len(failed)}/{total} pass, excluded: {sorted(failed)}")


def test_exclusion_set_is_section_2_3_plus_three_java_ids():
    assert SECTION_2_3 == {
        "parallel_multiple_12",
        "parallel_multiple_26",
        "live_simple_106-63-0",
        "live_simple_112-68-0",
        "live_multiple_507-149-4",
        "live_multiple_964-207-0",
        "live_multiple_862-181-3",
    }
    assert set(EXTRA_JAVA_EXCLUSIONS) == {"simple_java_36", "simple_java_64", "simple_java_65"}
    assert all(EXCLUSIONS[i] for i in EXCLUSIONS)


@pytest.mark.parametrize("test_id", ["simple_java_36", "simple_java_65"])
def test_arraylist_of_any_cannot_hold_numbers_or_booleans(test_id):
    """Every spelling of the list goes through java_type_converter(…, 'any'), which returns strings."""
    bfcl_root()
    from bfcl_eval.eval_checker.ast_eval.type_convertor.java_type_converter import java_type_converter

    for text in (
        'new ArrayList<>(Arrays.asList("userID", 42, true))',
        "new ArrayList<>() {{ add(42); add(true); }}",
        "new ArrayList<Object>(Arrays.asList(42, true))",
    ):
        converted = java_type_converter(text, "ArrayList", "any")
        assert all(isinstance(v, str) for v in converted), converted


def test_dict_value_without_option_list_is_compared_per_character(bfcl):
    """The literal answer {"format": "epoch_millis"} fails (only a single character of it would pass)."""
    _, failed = _check(bfcl, "simple_java", _render)
    assert failed["simple_java_64"] == "value_error:dict_value"


def test_original_prompt_is_byte_exact():
    bfcl_root()
    import bfcl_handler as h

    options = h.HandlerOptions(prompt="bfcl")
    assert options.block == "first"
    prompt = h.format_prompt(options, [{"role": "user", "content": "Weather in Paris?"}], [TOY_TOOL])
    assert len(prompt) == 1812
    assert hashlib.sha256(prompt.encode()).hexdigest().startswith("d43699e9")
    with_own_system = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Weather in Paris?"}]
    assert h.format_prompt(options, with_own_system, [TOY_TOOL]) == prompt  # replaced, as the original did
    kept = h.format_prompt(h.HandlerOptions(prompt="bfcl", system="keep"), with_own_system, [TOY_TOOL])
    assert "\n\nBe brief.<|im_end|>" in kept


def test_train_prompt_is_the_training_system_message():
    bfcl_root()
    import bfcl_handler as h

    from tool_n1.prompts import DEFAULT_PREAMBLE, training_system_prompt
    from tool_n1.schema import normalize_tool

    faithful = h.HandlerOptions(data_mode="faithful")
    assert faithful.block == "last"
    assert h.system_message(faithful, [TOY_TOOL]) == training_system_prompt([TOY_TOOL], DEFAULT_PREAMBLE)
    improved = h.system_message(h.HandlerOptions(), [TOY_TOOL])
    assert improved == training_system_prompt([normalize_tool(TOY_TOOL)], DEFAULT_PREAMBLE, dedupe=True)
    assert improved.count("Here is a list of functions") == 1
    prompt = h.format_prompt(faithful, [{"role": "user", "content": "Hi"}], [TOY_TOOL])
    assert prompt.startswith("<|im_start|>system\nYou are an expert") and prompt.endswith("<|im_start|>assistant\n")


def test_block_policy_and_no_call():
    from tool_n1 import bfcl_decode

    two = '<tool_call>[{"name": "a", "arguments": {}}]</tool_call> <tool_call>[{"name": "b", "arguments": {}}]'
    two += "</tool_call>"
    assert bfcl_decode.decode_ast(two, "first") == [{"a": {}}]
    assert bfcl_decode.decode_ast(two, "last") == [{"b": {}}]
    assert bfcl_decode.decode_ast("<think>x</think><tool_call>[]</tool_call>") == []
    with pytest.raises(bfcl_decode.DecodeError):
        bfcl_decode.decode_ast("I cannot help with that.")


def test_handler_block_policy_per_prompt():
    """BFCL's defaults: the original prompt reads the first block (paper-faithful), the training prompt the last
    (consistent with the training reward); the handler decodes with the block its options name."""
    bfcl_root()
    import bfcl_handler as h

    assert h.HandlerOptions(prompt="bfcl").block == "first"
    assert h.HandlerOptions().block == "last"
    two = '<tool_call>[{"name": "a", "arguments": {}}]</tool_call><tool_call>[{"name": "b", "arguments": {}}]'
    two += "</tool_call>"
    for options, expected in ((h.HandlerOptions(prompt="bfcl"), "a"), (h.HandlerOptions(), "b")):
        handler = h.handler_class(options).__new__(h.handler_class(options))
        assert handler.decode_ast(two, "python", False) == [{expected: {}}]
