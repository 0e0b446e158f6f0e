"""The three original prompts byte for byte (sha256 test vectors), and prompt ↔ reward agreement."""

import hashlib
import json

from tool_n1 import prompts
from tool_n1.reward import compute_score

TOY_TOOL = {
    "name": "get_weather",
    "description": "Get weather.",
    "parameters": {
        "type": "dict",
        "properties": {"city": {"type": "string", "description": "City."}},
        "required": ["city"],
    },
}


def digest(text: str) -> tuple[int, str]:
    return len(text), hashlib.sha256(text.encode()).hexdigest()


def test_training_system_prompt_test_vector():
    assert digest(prompts.training_system_prompt([TOY_TOOL])) == (
        1656,
        "6ebb97138b232bcf8db31c0c8b1256beffcdcf727a01cd7b488470222f62f33f",
    )
    assert len(prompts.DEFAULT_PREAMBLE) == 471 and len(prompts.TRAINING_TEMPLATE) == 982


def test_distillation_prompt_test_vector():
    assert digest(prompts.distillation_system_prompt([TOY_TOOL])) == (
        1696,
        "b6ed97f9ea727e64d270a0306b2b82fe3e0720f8fac889b8c3e88c038a48e26f",
    )


def test_bfcl_handler_prompt_test_vectors():
    system = prompts.bfcl_system_prompt([TOY_TOOL])
    assert digest(system) == (1715, "831bf6199babd50190f7a2976a9d34019490192a6f2f09d5910088b818d9aa2a")
    full = prompts.chatml([{"role": "system", "content": system}, {"role": "user", "content": "Weather in Paris?"}])
    assert digest(full) == (1812, "d43699e971b67ce520d4ceab9639b102694ef06b3fb34ab429ab6e512040f2dd")


def test_dedupe_removes_the_duplicated_sentence_only():
    faithful = prompts.training_system_prompt([TOY_TOOL])
    deduped = prompts.training_system_prompt([TOY_TOOL], dedupe=True)
    assert faithful.count(prompts.LIST_INTRO) == 2 and deduped.count(prompts.LIST_INTRO) == 1
    assert deduped.endswith(prompts.TRAINING_TEMPLATE.replace("{tools}", prompts.render_tools([TOY_TOOL])))


def test_the_prompts_own_example_reply_scores_one():
    """The example the prompt shows the model is exactly what the reward accepts."""
    gt = json.dumps(prompts.EXAMPLE_CALLS)
    system = prompts.training_system_prompt([TOY_TOOL])
    example = system.split("A complete reply example is: ", 1)[1].split(". Please make sure", 1)[0]
    assert example == prompts.EXAMPLE_REPLY
    for mode in ("faithful", "improved"):
        assert compute_score("toolcall", example, gt, mode=mode)["score"] == 1.0


def test_format_response_round_trip_through_prompt_and_reward():
    calls = [{"name": "get_weather", "arguments": {"city": "Oslo"}}]
    response = prompts.format_response(calls, think="The user asks for Oslo's weather.")
    full = prompts.chatml([{"role": "system", "content": prompts.training_system_prompt([TOY_TOOL])}]) + response
    for mode in ("faithful", "improved"):
        assert compute_score("toolcall", response, json.dumps(calls), mode=mode)["score"] == 1.0
        assert compute_score("toolcall", full + "<|im_end|>", json.dumps(calls), mode=mode)["score"] == 1.0
