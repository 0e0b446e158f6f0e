"""Seeded toy data in the real raw formats: ToolACE hub dialogs and xLAM rows, plus a held-out set.

    cd data_process && python make_demo_data.py --output-dir ../data/demo_raw [--toolace 120] [--xlam 240] [--seed 0]

Writes ``toolace.json`` / ``xlam.json`` (training) and ``heldout_toolace.json`` / ``heldout_xlam.json`` (other
seeded draws over the same tools, so the held-out queries are new while the tools are known). Every file goes through
``data_process.py`` like the real data sets. The tools, queries and calls are written here by us (not copied from any
data set): single calls, parallel calls (two calls in one turn) and multi-turn ToolACE dialogs with tool results.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

TOOLACE_PREAMBLE = (
    "You are an expert in composing functions. You are given a question and a set of possible functions. \n"
    "Based on the question, you will need to make one or more function/tool calls to achieve the purpose. \n"
    "If none of the function can be used, point it out. If the given question lacks the parameters required by "
    "the function,\nalso point it out. You should only return the function call in tools call sections.\n"
    "Here is a list of functions in JSON format that you can invoke:\n"
)
TOOLACE_SUFFIX = (
    ". \nShould you decide to return the function call(s). \nPut it in the format of [func1(params_name=params_value,"
    " params_name2=params_value2...), func2(params)]\n\nNO other text MUST be included. \n"
)
CITIES = ["Paris", "Oslo", "Lima", "Nairobi", "Osaka", "Denver", "Porto", "Hanoi", "Quito", "Tallinn"]
CURRENCIES = ["USD", "EUR", "JPY", "GBP", "CHF", "INR"]
TICKERS = ["AAPL", "NVDA", "MSFT", "TSLA", "AMZN"]
LANGUAGES = ["French", "German", "Spanish", "Japanese", "Swahili"]
PHRASES = ["good morning", "where is the station", "thank you very much", "how much does it cost"]
PEOPLE = ["Alice", "Bob", "Carol", "Dmitri", "Esther"]

# name: (description, {param: (type, description)}, required, value sampler, query template)
TOOLS = {
    "get_weather": (
        "Current weather for a city.",
        {"city": ("string", "City name."), "unit": ("string", "'celsius' or 'fahrenheit'.")},
        ["city"],
        lambda r: {"city": r.choice(CITIES), "unit": r.choice(["celsius", "fahrenheit"])},
        "What's the weather in {city} right now, in {unit}?",
    ),
    "convert_currency": (
        "Convert an amount between two currencies at today's rate.",
        {
            "amount": ("number", "Amount to convert."),
            "from_currency": ("string", "ISO code of the source currency."),
            "to_currency": ("string", "ISO code of the target currency."),
        },
        ["amount", "from_currency", "to_currency"],
        lambda r: dict(
            zip(["from_currency", "to_currency"], r.sample(CURRENCIES, 2), strict=True),
            amount=r.choice([25, 120, 990]),
        ),
        "How much is {amount} {from_currency} in {to_currency}?",
    ),
    "get_stock_price": (
        "Latest trading price of a stock.",
        {"ticker": ("string", "Stock ticker symbol."), "include_history": ("boolean", "Add the last 5 closes.")},
        ["ticker"],
        lambda r: {"ticker": r.choice(TICKERS), "include_history": r.choice([True, False])},
        "Give me the price of {ticker} (history: {include_history}).",
    ),
    "translate_text": (
        "Translate a text into another language.",
        {"text": ("string", "Text to translate."), "target_language": ("string", "Language to translate into.")},
        ["text", "target_language"],
        lambda r: {"text": r.choice(PHRASES), "target_language": r.choice(LANGUAGES)},
        "Translate '{text}' into {target_language}.",
    ),
    "search_flights": (
        "Search direct flights between two cities on a date.",
        {
            "origin": ("string", "Departure city."),
            "destination": ("string", "Arrival city."),
            "date": ("string", "Date, YYYY-MM-DD."),
            "passengers": ("integer", "Number of passengers."),
        },
        ["origin", "destination", "date"],
        lambda r: dict(
            zip(["origin", "destination"], r.sample(CITIES, 2), strict=True),
            date=f"2025-0{r.randint(1, 9)}-1{r.randint(0, 9)}",
            passengers=r.randint(1, 4),
        ),
        "Find flights from {origin} to {destination} on {date} for {passengers} people.",
    ),
    "send_email": (
        "Send an email to a contact.",
        {"to": ("string", "Recipient name."), "subject": ("string", "Subject line."), "body": ("string", "Text.")},
        ["to", "subject", "body"],
        lambda r: {"to": r.choice(PEOPLE), "subject": "Meeting", "body": f"See you at {r.randint(8, 17)}:00."},
        "Email {to} with subject '{subject}' saying '{body}'",
    ),
    "create_reminder": (
        "Create a reminder at a given time.",
        {"title": ("string", "What to remember."), "hour": ("integer", "Hour, 0-23."), "tags": ("array", "Labels.")},
        ["title", "hour"],
        lambda r: {
            "title": f"call {r.choice(PEOPLE)}",
            "hour": r.randint(6, 22),
            "tags": r.sample(["work", "home"], 1),
        },
        "Remind me to {title} at {hour}:00, tagged {tags}.",
    ),
    "get_news": (
        "Top headlines for a topic.",
        {"topic": ("string", "Topic to search."), "limit": ("integer", "How many headlines.")},
        ["topic"],
        lambda r: {"topic": r.choice(["football", "climate", "elections", "space"]), "limit": r.choice([3, 5])},
        "Show me the top {limit} headlines about {topic}.",
    ),
}
TOOL_RESULTS = {"get_weather": {"temperature": 18, "sky": "cloudy"}, "convert_currency": {"result": 104.2}}


def tool_spec(name: str) -> dict:
    description, params, required, _, _ = TOOLS[name]
    properties = {p: {"type": t, "description": d} for p, (t, d) in params.items()}
    return {
        "name": name,
        "description": description,
        "parameters": {"type": "dict", "properties": properties, "required": required},
    }


def draw_call(rng: random.Random, name: str) -> tuple[dict, str]:
    arguments = TOOLS[name][3](rng)
    return {"name": name, "arguments": arguments}, TOOLS[name][4].format(**arguments)


def call_string(calls: list[dict]) -> str:
    """ToolACE's bracketed form, values as Python literals: ``[get_weather(city="Oslo", unit="celsius")]``."""
    return (
        "["
        + ", ".join(
            f"{c['name']}("
            + ", ".join(f"{k}={json.dumps(v) if isinstance(v, str) else repr(v)}" for k, v in c["arguments"].items())
            + ")"
            for c in calls
        )
        + "]"
    )


def toolace_dialog(rng: random.Random, n_tools: int) -> dict:
    names = rng.sample(sorted(TOOLS), n_tools)
    turns = []
    for _ in range(rng.choice([1, 1, 2])):  # a third of the dialogs have a second user request
        parallel = rng.random() < 0.3
        drawn = [draw_call(rng, n) for n in (rng.sample(names, 2) if parallel else [rng.choice(names)])]
        turns.append({"from": "user", "value": " Also, ".join(q for _, q in drawn)})
        calls = [c for c, _ in drawn]
        turns.append({"from": "assistant", "value": call_string(calls)})
        results = [{"name": c["name"], "results": TOOL_RESULTS.get(c["name"], {"status": "ok"})} for c in calls]
        turns.append({"from": "tool", "value": json.dumps(results)})
        turns.append({"from": "assistant", "value": "Done: " + "; ".join(c["name"] for c in calls) + "."})
    tools = json.dumps([tool_spec(n) for n in names])
    return {"system": TOOLACE_PREAMBLE + tools + TOOLACE_SUFFIX, "conversations": turns}


def xlam_row(rng: random.Random, row_id: int, n_tools: int) -> dict:
    names = rng.sample(sorted(TOOLS), n_tools)
    drawn = [draw_call(rng, n) for n in (names[:2] if rng.random() < 0.3 else names[:1])]
    tools = [
        {
            "name": n,
            "description": TOOLS[n][0],
            "parameters": {
                p: {
                    "type": {
                        "string": "str",
                        "number": "float",
                        "integer": "int",
                        "boolean": "bool",
                        "array": "List[str]",
                    }[t],
                    "description": d,
                }
                for p, (t, d) in TOOLS[n][1].items()
            },
        }
        for n in names
    ]
    return {
        "id": row_id,
        "query": " And ".join(q for _, q in drawn),
        "answers": json.dumps([c for c, _ in drawn]),
        "tools": json.dumps(tools),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter, allow_abbrev=False
    )
    parser.add_argument(
        "--output-dir",
        type=Path,
        default=Path(__file__).resolve().parent.parent / "data" / "demo_raw",
        help="folder for the four JSON files (default: data/demo_raw)",
    )
    parser.add_argument("--toolace", type=int, default=120, help="training ToolACE dialogs (default 120)")
    parser.add_argument("--xlam", type=int, default=240, help="training xLAM rows (default 240)")
    parser.add_argument("--heldout", type=int, default=40, help="held-out dialogs and rows, each (default 40)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0); held-out uses seed + 1")
    parser.add_argument(
        "--tools",
        type=int,
        default=3,
        choices=range(2, len(TOOLS) + 1),
        metavar="N",
        help=f"tools offered per dialog/row, 2 to {len(TOOLS)} (default 3); fewer = shorter prompts",
    )
    args = parser.parse_args(argv)

    args.output_dir.mkdir(parents=True, exist_ok=True)
    for prefix, seed, n_toolace, n_xlam in [
        ("", args.seed, args.toolace, args.xlam),
        ("heldout_", args.seed + 1, args.heldout, args.heldout),
    ]:
        rng = random.Random(seed)
        toolace = [toolace_dialog(rng, args.tools) for _ in range(n_toolace)]
        xlam = [xlam_row(rng, i, args.tools) for i in range(n_xlam)]
        (args.output_dir / f"{prefix}toolace.json").write_text(json.dumps(toolace, indent=1))
        (args.output_dir / f"{prefix}xlam.json").write_text(json.dumps(xlam, indent=1))
        print(f"{prefix or 'train '}: {n_toolace} ToolACE dialogs, {n_xlam} xLAM rows -> {args.output_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
