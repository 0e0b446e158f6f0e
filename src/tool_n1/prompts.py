"""The Tool-N1 prompts, byte-exact: RL training system prompt, distillation prompt, original BFCL-handler prompt.

The original used three slightly different texts (its paper says they are identical; they are not). Each is built
here from shared sentences so that the differences stay visible. Test vectors (toy tool ``get_weather``):
training system message 1,656 chars, distillation system prompt 1,696 chars, BFCL-handler ChatML prompt 1,812 chars
(sha256 values in ``tests/test_prompts.py``).

>>> system = training_system_prompt([{"name": "f", "description": "d", "parameters": {}}])
>>> system.count("Here is a list of functions in JSON format that you can invoke:")  # the original duplicates it
2
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

# --------------------------------------------------------------------------- shared sentences
ROLE = "You are an expert in composing functions. You are given a question and a set of possible functions."
TASK = "Based on the question, you will need to make one or more function/tool calls to achieve the purpose."
MISSING = (
    "If none of the function can be used, point it out. If the given question lacks the parameters required by "
    "the function,"
)
RETURN_ONLY = "also point it out. You should only return the function call in tools call sections."
LIST_INTRO = "Here is a list of functions in JSON format that you can invoke:"
STEP_HEADER = "In each action step, you MUST: "
CALL_FORMAT = (
    '<tool_call>[{"name": <function-name>, "arguments": <args-json-object>}, '
    '{"name": <function-name2>, "arguments": <args-json-object2>}, ...]</tool_call>'
)
EXAMPLE_THINK = "To address the query, I need to send the email to Bob and then buy the banana through walmart. "
EXAMPLE_CALLS = [
    {"name": "email", "arguments": {"receiver": "Bob", "content": "I will bug banana through walmart"}},
    {"name": "walmart", "arguments": {"input": "banana"}},
]
EXAMPLE_REPLY = f"<think>{EXAMPLE_THINK}</think> <tool_call> {json.dumps(EXAMPLE_CALLS)}</tool_call>"
TYPE_NOTE = "Please make sure the type of the arguments is correct."
NO_CALL_NOTE = (
    "If no functions could be used in the current task, please make tool_calls an empty list <tool_call>[]</tool_call>"
)

TRAINING_STEPS = [
    STEP_HEADER,
    "1. Think about the reasoning process in the mind and enclosed your reasoning within <think> </think> XML tags.",
    "2. Then, provide a json object with function names and arguments within <tool_call></tool_call> XML tags. "
    f"i.e., {CALL_FORMAT}",
    "3. Make sure both the reasoning and the tool call steps are included together in one single reply.",
    f"A complete reply example is: {EXAMPLE_REPLY}. {TYPE_NOTE}",
]
BFCL_STEPS = [
    STEP_HEADER,
    "1. think about the reasoning process in the mind before and enclosed your reasoning within <think> </think> "
    "XML tags.",
    f"2. then return a json object with function names and arguments within <tool_call></tool_call> XML tags. "
    f"i.e., {CALL_FORMAT}",
    "3. remember complete 1 and 2 in one single reply.",
    f'A complete reply example is: {EXAMPLE_REPLY}. {TYPE_NOTE}  {NO_CALL_NOTE}"',
]

#: The original's ``DEFAULT_PROMPT``: the preamble of every training system message (xLAM; ToolACE has its own).
DEFAULT_PREAMBLE = f"{ROLE} \n{TASK} \n{MISSING}\n{RETURN_ONLY} {LIST_INTRO}\n"

#: The tool-prompt template appended to the preamble (``{tools}`` = :func:`render_tools`).
TRAINING_TEMPLATE = f"# Tool\n\n{LIST_INTRO}\n\n<tools>\n{{tools}}\n</tools>\n\n" + "\n".join(TRAINING_STEPS) + " \n"


def render_tools(tools: Iterable[Mapping[str, Any]], *, trailing_newline: bool = False) -> str:
    """One ``json.dumps({"type": "function", "function": tool})`` line per tool (default separators, ASCII)."""
    lines = [json.dumps({"type": "function", "function": tool}) for tool in tools]
    if trailing_newline:
        return "".join(line + "\n" for line in lines)
    return "\n".join(lines)


def training_system_prompt(
    tools: Iterable[Mapping[str, Any]], preamble: str = DEFAULT_PREAMBLE, *, dedupe: bool = False
) -> str:
    """The RL system message: ``preamble`` + the tool template, exactly as the original built it.

    The preamble already ends with "Here is a list of functions…", so the sentence appears twice; ``dedupe=True``
    (improved data mode) drops it from the end of the preamble.
    """
    if dedupe and preamble.rstrip().endswith(LIST_INTRO):
        preamble = preamble.rstrip()[: -len(LIST_INTRO)].rstrip() + "\n"
    return preamble + TRAINING_TEMPLATE.replace("{tools}", render_tools(tools))


def distillation_system_prompt(tools: Iterable[Mapping[str, Any]]) -> str:
    """The system prompt of the original distillation script (4-space indentation, one extra sentence)."""
    steps = "\n".join("    " + line for line in TRAINING_STEPS)
    return (
        f"\n    {ROLE} \n{TASK} \n{MISSING}\n{RETURN_ONLY}\n"
        f" You are provided with function signatures within <tools></tools> XML tags. {LIST_INTRO}\n\n\n"
        f"    <tools>\n    {render_tools(tools)}\n    </tools>\n\n{steps}"
    )


#: ``get_raw_sft_data.py`` (No-Reason SFT) splits the system prompt here and keeps what is before it.
STEP_MARKER = STEP_HEADER.rstrip(": ")
#: The no-think instruction of the original No-Reason SFT data (``get_raw_sft_data.py``), verbatim, typos included.
NO_REASON_INSTRUCTION = (
    "When you want to perform tool call, in each action step, providing a json object with function names and "
    'arguments within <tool_call></tool_call> XML tags. i.e., <tool_call>[{"name": <function-name>, "arguments": '
    '<args-json-object>}, {"name": <function-name2>, "arguments": <args-json-object2>}, ...]</tool_call>\n'
    'A complete reply example is: <tool_call> [{"name": "email", "arguments": {"receiver": "Bob", "content": '
    '"I will bug banana through walmart"}}, {"name": "walmart", "arguments": {"input": "banana"}}]</tool_call>. '
    "Please make sure the type of the arguments is correct."
)


def no_reason_system_prompt(system: str) -> str:
    """Replace everything from "In each action step, you MUST" on with :data:`NO_REASON_INSTRUCTION`, as the
    original No-Reason SFT data did; a prompt without that sentence is returned unchanged."""
    if STEP_MARKER not in system:
        return system
    return system.split(STEP_MARKER, 1)[0] + NO_REASON_INSTRUCTION


def bfcl_system_prompt(tools: Iterable[Mapping[str, Any]]) -> str:
    """The system prompt of the original BFCL handler (it replaces each test entry's own system message)."""
    steps = "\n".join("    " + line for line in BFCL_STEPS)
    return (
        f"\n        {ROLE} {TASK} {MISSING} {RETURN_ONLY}\n\n    # Tool\n    {LIST_INTRO}\n\n"
        f"    <tools>\n    {render_tools(tools, trailing_newline=True)}\n    </tools>\n\n{steps}\n    "
    )


def chatml(messages: Iterable[Mapping[str, Any]], add_generation_prompt: bool = True) -> str:
    """``<|im_start|>{role}\\n{content}<|im_end|>\\n`` per message (+ ``<|im_start|>assistant\\n``), as the original
    BFCL handler assembled Qwen prompts by hand."""
    text = "".join(f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n" for m in messages)
    return text + "<|im_start|>assistant\n" if add_generation_prompt else text


def format_response(calls: list[dict[str, Any]], think: str = "") -> str:
    """A reply in exactly the format the prompts ask for: ``<think>…</think> <tool_call>[…]</tool_call>``."""
    return f"<think>{think}</think> <tool_call>{json.dumps(calls)}</tool_call>"
