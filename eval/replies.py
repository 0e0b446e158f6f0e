"""One model reply → the calls a scorer compares, or the reason it has none (never an exception).

Shared by the API-Bank and ACEBench scorers (BFCL decodes through :mod:`tool_n1.bfcl_decode`). Every item ends in
exactly one status, counted apart in the reports:

* ``missing``: no output for the id (not generated, or absent from the predictions file);
* ``not_text``: the stored output is not a string (``"output": null``, a number, an object);
* ``too_deep``: the call list nests deeper than :data:`MAX_NESTING` (scored wrong before any recursive checker sees
  it; JSON deeper than the interpreter allows is already a parse failure);
* ``unparsable``: text without a usable tool-call block (:func:`tool_n1.parsing.parse_response`'s error);
* ``parsed``: a call list.

Every step is linear in the reply's length (block search, ``json.loads``, an iterative depth walk), so a 1 MB reply
costs milliseconds.

>>> read_reply({"a": '<tool_call>[{"name": "f", "arguments": {}}]</tool_call>'}, "a", "first").calls
[{'name': 'f', 'arguments': {}}]
>>> read_reply({"a": None}, "a", "first").status
'not_text'
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tool_n1.parsing import BlockPolicy, parse_response

#: Deepest list/object nesting a scorer is given (real call arguments nest a few levels).
MAX_NESTING = 64
STATUSES = ("parsed", "unparsable", "too_deep", "not_text", "missing")


@dataclass(frozen=True)
class Reply:
    status: str
    calls: list[dict[str, Any]] | None
    reason: str


def nesting_depth(value: Any, limit: int = MAX_NESTING) -> int:
    """Depth of nested lists/dicts (a scalar is 0), walked without recursion; stops counting past ``limit``."""
    deepest = 0
    stack = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (list, dict)):
            depth += 1
            deepest = max(deepest, depth)
            if depth > limit:
                return depth
            stack.extend((child, depth) for child in (item.values() if isinstance(item, dict) else item))
    return deepest


def read_reply(outputs: Mapping[str, Any], item_id: str, block: BlockPolicy) -> Reply:
    """The calls in ``outputs[item_id]`` read with ``block``, or a status and reason saying why there are none."""
    if item_id not in outputs:
        return Reply("missing", None, "no output for this id")
    text = outputs[item_id]
    if not isinstance(text, str):
        return Reply("not_text", None, f"output is {type(text).__name__}, not text")
    parsed = parse_response(text, block=block)
    if parsed.calls is None:
        return Reply("unparsable", None, parsed.error)
    if nesting_depth(parsed.calls) > MAX_NESTING:
        return Reply("too_deep", None, f"call list nested deeper than {MAX_NESTING}")
    return Reply("parsed", parsed.calls, "")
