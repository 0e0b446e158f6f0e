"""Stage 2 (unified records -> verl parquet): split, chat construction, schema, and loading in verl's RLHFDataset."""

import hashlib
import json

import arrow_batches
import pytest
import to_verl_parquet
import verl_rows
from to_verl_parquet import split_positions
from verl_rows import build_prompt

import data_process
from tests.test_prompts import TOY_TOOL as GET_WEATHER  # the reference's toy tool, behind its test vectors
from tool_n1.prompts import DEFAULT_PREAMBLE

BOOK = {"name": "book", "description": "Book.", "parameters": {"type": "dict", "properties": {}}}
CONTEXT = [
    {"from": "human", "value": "Weather in Paris and book 7"},
    {"from": "function_call", "value": json.dumps([{"name": "get_weather", "arguments": {"city": "Paris"}}])},
    {"from": "observation", "value": '[{"name": "get_weather", "results": {"t": 20}}]'},
    {"from": "gpt", "value": "It is 20C in Paris."},
    {"from": "human", "value": "Book 8 too"},
]


def record(conversations=CONTEXT, tools=(GET_WEATHER, BOOK)):
    return {
        "raw_system": DEFAULT_PREAMBLE,
        "tools": list(tools),
        "conversations": conversations,
        "answer": [{"name": "book", "arguments": {"id": 8}}],
        "id": "toolace_multiple_turn",
    }


def test_faithful_system_message_matches_the_reference_test_vector():
    system = build_prompt(record([{"from": "human", "value": "hi"}], [GET_WEATHER]), "json-string", False)[0]
    assert len(system["content"]) == 1656
    digest = hashlib.sha256(system["content"].encode()).hexdigest()
    assert digest == "6ebb97138b232bcf8db31c0c8b1256beffcdcf727a01cd7b488470222f62f33f"


def test_faithful_multi_turn_context_is_double_encoded():
    prompt = build_prompt(record(), "json-string", False)
    assert [m["role"] for m in prompt] == ["system", "user", "assistant", "tool", "assistant", "user"]
    assert prompt[2]["content"] == '"[{\\"name\\": \\"get_weather\\", \\"arguments\\": {\\"city\\": \\"Paris\\"}}]"'
    assert prompt[0]["content"].count("Here is a list of functions in JSON format that you can invoke:") == 2


def test_improved_context_uses_tool_call_blocks_and_one_list_intro():
    prompt = build_prompt(record(), "tool-call-block", True)
    assert prompt[2]["content"] == '<tool_call>[{"name": "get_weather", "arguments": {"city": "Paris"}}]</tool_call>'
    assert prompt[0]["content"].count("Here is a list of functions in JSON format that you can invoke:") == 1


def test_seeded_split_is_stable_and_faithful_drops_the_remainder():
    train, test, dropped = split_positions(12, 42, 0.9, "drop")
    assert (len(train), len(test), dropped) == (10, 1, 1)  # the reference's 12 synthetic records -> 10 / 1
    assert (train, test) == split_positions(12, 42, 0.9, "drop")[:2]
    assert split_positions(12, 7, 0.9, "drop")[0] != train
    train, test, dropped = split_positions(69653, 42, 0.9, "drop")
    assert (len(train), len(test), dropped) == (62687, 6965, 1)  # the paper's Table 1 total
    _, test_all, dropped = split_positions(12, 42, 0.9, "test")
    assert len(test_all) == 2 and dropped == 0
    # regression pin: random.Random(seed).shuffle is specified by Python, so this holds on every machine
    assert split_positions(12, 42, 0.9, "test")[0][:3] == [7, 5, 2]


def make_parquet(tmp_path, fixtures, mode, *extra):
    pytest.importorskip("pyarrow")  # stage 2 writes parquet (the rl environment has it; the light dev one does not)
    unified = tmp_path / "unified"
    inputs = [
        "--toolace",
        str(fixtures / "toolace" / "hub_format_row2.json"),
        str(fixtures / "toolace" / "sharegpt_func_fixed_rows_0-49.json"),
        "--xlam",
        str(fixtures / "xlam" / "distilabel_sample_rows.json"),
        str(fixtures / "xlam" / "audited_rows.json"),
    ]
    assert (
        data_process.main(
            [*inputs, "--mode", mode, "--output-dir", str(unified), "--no-progress", "--log-level", "ERROR"]
        )
        == 0
    )
    out = tmp_path / "verl"
    code = to_verl_parquet.main(
        [
            "--input",
            str(unified / "unified.jsonl"),
            "--output-dir",
            str(out),
            "--mode",
            mode,
            "--no-progress",
            "--log-level",
            "ERROR",
            *extra,
        ]
    )
    assert code == 0
    return out, json.loads((out / "parquet_report.json").read_text())


def test_faithful_parquet_schema_and_split(shared_fixtures, tmp_path):
    pq = pytest.importorskip("pyarrow.parquet")
    out, report = make_parquet(tmp_path, shared_fixtures, "faithful")
    train = pq.read_table(out / "train.parquet")
    test = pq.read_table(out / "test.parquet")
    assert train.column_names == [
        "tools",
        "conversations",
        "answer",
        "raw_system",
        "data_source",
        "prompt",
        "ability",
        "reward_model",
        "extra_info",
    ]
    assert [f.name for f in train.schema.field("extra_info").type] == ["split", "index", "prompt_type"]
    n = report["records_read"]  # 4 ToolACE (faithful) + 43 xLAM samples
    assert n == 47 and (train.num_rows, test.num_rows) == (int(0.9 * n), int(0.1 * n))
    assert report["split"]["dropped_by_split"] == n - int(0.9 * n) - int(0.1 * n)
    rows = train.to_pylist()
    assert [r["extra_info"]["index"] for r in rows] == list(range(train.num_rows))
    assert {r["extra_info"]["prompt_type"] for r in rows} == {"qwen"}
    assert all(r["reward_model"] == {"style": "rule", "ground_truth": r["answer"]} for r in rows)


def test_improved_parquet_has_global_unique_index(shared_fixtures, tmp_path):
    pq = pytest.importorskip("pyarrow.parquet")
    out, report = make_parquet(tmp_path, shared_fixtures, "improved", "--prompt-type", "llama")
    rows = pq.read_table(out / "train.parquet").to_pylist() + pq.read_table(out / "test.parquet").to_pylist()
    assert len(rows) == report["records_read"] and report["split"]["dropped_by_split"] == 0
    assert sorted(r["extra_info"]["index"] for r in rows) == list(range(len(rows)))
    assert {r["extra_info"]["prompt_type"] for r in rows} == {"llama"}
    assert all(r["extra_info"]["origin"] for r in rows)


def tiny_tokenizer(path):
    """A byte-level BPE tokenizer with a ChatML template, built offline (verl.md §5.2)."""
    tokenizers = pytest.importorskip("tokenizers")
    transformers = pytest.importorskip("transformers")
    bpe = tokenizers.Tokenizer(tokenizers.models.BPE())
    bpe.pre_tokenizer = tokenizers.pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = tokenizers.decoders.ByteLevel()
    trainer = tokenizers.trainers.BpeTrainer(
        vocab_size=400,
        special_tokens=["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
        initial_alphabet=tokenizers.pre_tokenizers.ByteLevel.alphabet(),
    )
    bpe.train_from_iterator(["You are an expert in composing functions. <tool_call> get_weather"], trainer=trainer)
    tokenizer = transformers.PreTrainedTokenizerFast(
        tokenizer_object=bpe, eos_token="<|im_end|>", pad_token="<|endoftext|>"
    )
    tokenizer.chat_template = (
        "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
        "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
    )
    tokenizer.save_pretrained(path)
    return tokenizer


@pytest.mark.rl_env
def test_parquet_loads_in_verl_rlhf_dataset_with_overlong_filter(shared_fixtures, tmp_path):
    rl_dataset = pytest.importorskip("verl.utils.dataset.rl_dataset")
    from omegaconf import OmegaConf

    tokenizer = tiny_tokenizer(tmp_path / "tokenizer")
    out, report = make_parquet(
        tmp_path,
        shared_fixtures,
        "improved",
        "--tokenizer",
        str(tmp_path / "tokenizer"),
        "--max-prompt-length",
        "2500",
    )
    stats = report["prompt_tokens"]
    assert stats["count"] == report["records_read"] and stats["min"] <= 2500 < stats["max"]  # some are filtered
    filtered = sum(report["overlong_filtered"].values())
    assert 0 < filtered < report["records_read"]
    config = OmegaConf.create(
        {
            "max_prompt_length": 2500,
            "filter_overlong_prompts": True,
            "cache_dir": str(tmp_path / "cache"),
            "filter_overlong_prompts_workers": 1,
        }
    )
    dataset = rl_dataset.RLHFDataset(str(out / "train.parquet"), tokenizer, config)
    assert len(dataset) == report["rows_written"]["train"]  # verl's own filter keeps everything we kept
    item = dataset[0]
    assert item["raw_prompt"][0]["role"] == "system" and item["data_source"] == "toolcall"
    assert json.loads(item["reward_model"]["ground_truth"])
    strict = OmegaConf.merge(config, {"max_prompt_length": stats["min"]})
    assert len(rl_dataset.RLHFDataset(str(out / "train.parquet"), tokenizer, strict)) < len(dataset)


# --------------------------------------------------------------------------- the fast path = the original code


def stage2_options(mode, *extra):
    args = to_verl_parquet.build_parser().parse_args(["--mode", mode, *extra])
    for key, value in to_verl_parquet.PRESETS[mode].items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    return args


def original_row(line, opts, split, index):
    """The row dict the original stage 2 built for ``pa.Table.from_pylist`` (written out here on purpose)."""
    record = json.loads(line)
    answer = json.dumps(record["answer"])
    row = {
        "tools": json.dumps(record["tools"]),
        "conversations": [{"from": t["from"], "value": t["value"]} for t in record["conversations"]],
        "answer": answer,
        "raw_system": record["raw_system"],
        "data_source": opts.data_source,
        "prompt": build_prompt(record, opts.previous_calls, opts.dedupe_tool_intro),
        "ability": "toolcall",
        "reward_model": {"style": "rule", "ground_truth": answer},
        "extra_info": {"split": split, "index": index, "prompt_type": opts.prompt_type},
    }
    if opts.provenance:
        row["extra_info"]["id"] = str(record.get("id", ""))
        row["extra_info"]["origin"] = str(record.get("origin", ""))
    return row


@pytest.mark.parametrize("mode", ["faithful", "improved"])
def test_parquet_equals_the_original_row_by_row_construction(shared_fixtures, tmp_path, mode):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    out, report = make_parquet(tmp_path, shared_fixtures, mode)
    opts = stage2_options(mode)
    lines = (tmp_path / "unified" / "unified.jsonl").read_bytes().splitlines(keepends=True)
    train, test, _ = split_positions(len(lines), opts.seed, opts.train_ratio, opts.split_remainder)
    schema = arrow_batches.parquet_schema(opts.provenance)
    for split, positions in (("train", train), ("test", test)):
        rows = [
            original_row(lines[p], opts, split, p if opts.index == "global" else k) for k, p in enumerate(positions)
        ]
        assert pq.read_table(out / f"{split}.parquet").equals(pa.Table.from_pylist(rows, schema=schema))
    assert report["rows_written"] == {"train": len(train), "test": len(test)}


def odd_lines():
    tool = {"name": "f", "description": "a }, { b \u00e9", "parameters": {"type": "object", "properties": {}}}
    nested = {"name": "g", "parameters": {"enum": [{"a": 1}, {"b": 2}]}}
    base = {
        "id": "toolace_multiple_turn",
        "raw_system": DEFAULT_PREAMBLE,
        "tools": [tool, nested, tool],
        "conversations": CONTEXT,
        "answer": [{"name": "f", "arguments": {"n": 123456789012345678901234567890, "x": 0.1, "y": 1e-7}}],
        "source": "toolace",
        "origin": "t.json#0/turn 5",
    }
    yield json.dumps(base)
    yield json.dumps(base, ensure_ascii=False)
    yield json.dumps(base, separators=(",", ":"))
    yield json.dumps({**base, "id": 10**20, "answer": [{"name": "f", "arguments": {}}]})
    yield json.dumps({**base, "tools": [nested]})
    yield json.dumps({**base, "tools": [{"name": "h", "parameters": {"default": 10**25, "step": 0.5}}]})  # > 64 bits
    yield json.dumps({**base, "tools": []})
    yield json.dumps({**base, "answer": [{"name": "f", "arguments": {"x": float("nan")}}]})
    yield json.dumps({"tools": [tool], **base})
    yield json.dumps({**base, 'x"tools': [tool], "tools": [tool]})
    yield json.dumps({"id": "a", "raw_system": "s", "tools": [tool], "conversations": [], "answer": [], "tools2": 1})


@pytest.mark.parametrize("mode", ["faithful", "improved"])
def test_fast_rows_equal_reference_rows(shared_fixtures, tmp_path, mode):
    make_parquet(tmp_path, shared_fixtures, mode)
    opts = stage2_options(mode)
    lines = (tmp_path / "unified" / "unified.jsonl").read_bytes().splitlines(keepends=True)
    builder = verl_rows.RowBuilder(opts)
    fast = 0
    for line in [*lines, *(text.encode() + b"\n" for text in odd_lines())]:
        row = builder.fast_row(line)
        if row is not None:
            fast += 1
            assert row == verl_rows.reference_row(line, opts)
    assert fast >= len(lines)  # every line stage 1 writes takes the fast path


def test_bad_records_are_reported_not_fatal(tmp_path):
    pytest.importorskip("pyarrow")
    good = json.dumps({**record(), "source": "toolace", "origin": "o"})
    (tmp_path / "u.jsonl").write_text("\n".join([good, "{broken", json.dumps({"tools": []}), "", good]) + "\n")
    code = to_verl_parquet.main(
        ["--input", str(tmp_path / "u.jsonl"), "--output-dir", str(tmp_path / "out"), "--no-progress"]
    )
    report = json.loads((tmp_path / "out" / "parquet_report.json").read_text())
    assert code == 1 and report["records_read"] == 4
    assert set(report["records_rejected"]) == {"record line 2", "record line 3"}
    assert sum(report["rows_written"].values()) == 2


def test_lone_surrogate_record_is_rejected_not_fatal(tmp_path):
    pytest.importorskip("pyarrow")
    good = json.dumps({**record(), "source": "toolace", "origin": "o"})
    broken = record(conversations=[{"from": "human", "value": "bad \ud800 text"}])
    lines = [good, json.dumps({**broken, "source": "toolace", "origin": "o"}), good]
    (tmp_path / "u.jsonl").write_text("\n".join(lines) + "\n")
    for engine in ("local", "datasets"):
        out = tmp_path / f"out{engine}"
        argv = ["--input", str(tmp_path / "u.jsonl"), "--output-dir", str(out), "--no-progress", "--engine", engine]
        argv += ["--workers", "2"]
        assert to_verl_parquet.main(argv) == 1
        report = json.loads((out / "parquet_report.json").read_text())
        assert list(report["records_rejected"]) == ["record line 2"]
        assert "surrogates not allowed" in report["records_rejected"]["record line 2"]
        assert sum(report["rows_written"].values()) == 2


# --------------------------------------------------------------------------- speed paths give the same output


def test_string_and_int_arrays_equal_pyarrow_conversion():
    pa = pytest.importorskip("pyarrow")
    for values in ([], [""], ["a", "", "bc"], ["caf\u00e9", "x", "\U0001f600 ok", ""], ["ascii only"] * 5):
        built = arrow_batches.string_array(values)
        assert built.equals(pa.array(values, pa.string())) and built.to_pylist() == values
    for code, kind in (("i", pa.int32()), ("q", pa.int64())):
        values = [0, 5, -3, 2**31 - 1] if code == "i" else [0, 2**40, -(2**63)]
        assert arrow_batches.int_array(values, code).equals(pa.array(values, kind))
    with pytest.raises(UnicodeEncodeError):
        arrow_batches.string_array(["lone \ud800"])


def test_line_spans_skip_blank_lines_and_keep_a_last_line_without_newline(tmp_path):
    path = tmp_path / "u.jsonl"
    path.write_bytes(b'{"a": 1}\n\n  \t\n{"b": 22}\r\n \x0c\n {"c": 3}')
    offsets, lengths = arrow_batches.line_spans(path)
    data = path.read_bytes()
    assert [data[o : o + n] for o, n in zip(offsets, lengths, strict=True)] == [
        b'{"a": 1}\n',
        b'{"b": 22}\r\n',
        b' {"c": 3}',
    ]
    (tmp_path / "empty.jsonl").write_bytes(b"")
    assert arrow_batches.line_spans(tmp_path / "empty.jsonl") == ([], [])


@pytest.mark.parametrize("mode", ["faithful", "improved"])
def test_engine_writes_the_same_parquet(shared_fixtures, tmp_path, mode, monkeypatch):
    pytest.importorskip("datasets")
    monkeypatch.setattr(to_verl_parquet, "BATCH_ROWS", 4)  # many row groups from the small fixture files
    one, _ = make_parquet(tmp_path / "one", shared_fixtures, mode)
    many, report = make_parquet(tmp_path / "many", shared_fixtures, mode, "--engine", "datasets", "--workers", "2")
    for split in ("train", "test"):
        assert (many / f"{split}.parquet").read_bytes() == (one / f"{split}.parquet").read_bytes()
    assert report["rows_written"]["train"] > 8  # several row groups


# --------------------------------------------------------------------------- record selection (data ablations)


def _origins(path):
    pq = pytest.importorskip("pyarrow.parquet")
    return [row["origin"] for row in pq.read_table(path).column("extra_info").to_pylist()]


def test_train_sources_restrict_train_and_keep_test_whole(shared_fixtures, tmp_path):
    full, _ = make_parquet(tmp_path / "full", shared_fixtures, "improved")
    full_train = _origins(full / "train.parquet")
    for source, other in (("toolace", "xlam"), ("xlam", "toolace")):
        out, report = make_parquet(tmp_path / source, shared_fixtures, "improved", "--train-sources", source)
        kept = _origins(out / "train.parquet")
        assert kept and kept == [origin for origin in full_train if f"/{source}/" in origin]  # fixture folders
        assert _origins(out / "test.parquet") == _origins(full / "test.parquet")
        assert report["selection"]["train_left_out_by_source"] == {other: len(full_train) - len(kept)}


def test_keys_from_an_sft_manifest_select_the_distilled_records(shared_fixtures, tmp_path):
    from tool_n1 import distillation as distill_samples

    full, _ = make_parquet(tmp_path / "full", shared_fixtures, "improved")
    unified = tmp_path / "full" / "unified" / "unified.jsonl"
    samples, _ = distill_samples.load_samples(str(unified), None, None)
    chosen = samples[1::7]  # the keys the SFT manifest would list
    lines = unified.read_text().splitlines()
    expected = sorted(json.loads(lines[sample["line"] - 1])["origin"] for sample in chosen)
    manifest = tmp_path / "tool_sft_manifest.json"
    keys = [sample["key"] for sample in chosen]
    manifest.write_text(json.dumps({"subsets": {"rl_rest_50": {"rows": len(keys), "keys": [*keys, "sha:missing"]}}}))
    argv = ["--input", str(unified), "--no-progress", "--log-level", "ERROR", "--keys", str(manifest)]
    out = tmp_path / "subset"
    assert (
        to_verl_parquet.main([*argv, "--keys-subset", "rl_rest_50", "--train-ratio", "1", "--output-dir", str(out)])
        == 0
    )
    assert sorted(_origins(out / "train.parquet")) == expected and _origins(out / "test.parquet") == []
    report = json.loads((out / "parquet_report.json").read_text())
    assert report["selection"]["records_selected"] == len(chosen) and report["selection"]["keys_not_found"] == 1
    # the same keys as a plain list, and the errors
    (tmp_path / "keys.json").write_text(json.dumps(keys))
    plain = tmp_path / "plain"
    argv_plain = [a if a != str(manifest) else str(tmp_path / "keys.json") for a in argv]
    assert to_verl_parquet.main([*argv_plain, "--train-ratio", "1", "--output-dir", str(plain)]) == 0
    assert sorted(_origins(plain / "train.parquet")) == expected
    assert to_verl_parquet.main([*argv, "--keys-subset", "nope", "--output-dir", str(tmp_path / "e1")]) == 1
    assert to_verl_parquet.main([*argv, "--output-dir", str(tmp_path / "e2")]) == 1  # a manifest needs a subset
    no_keys = ["--input", str(unified), "--keys-subset", "rl_rest_50", "--output-dir", str(tmp_path / "e3")]
    assert to_verl_parquet.main(no_keys) == 2


def test_a_killed_run_writes_no_parquet_file(tmp_path, monkeypatch):
    pytest.importorskip("pyarrow")
    lines = [json.dumps({**record(), "source": "toolace", "origin": f"o{i}"}) for i in range(8)]
    (tmp_path / "u.jsonl").write_text("\n".join(lines) + "\n")

    def interrupted(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(to_verl_parquet, "write_splits", interrupted)
    with pytest.raises(KeyboardInterrupt):
        to_verl_parquet.main(["--input", str(tmp_path / "u.jsonl"), "--output-dir", str(tmp_path / "out")])
    written = sorted(path.name for path in (tmp_path / "out").iterdir())
    assert written == [".lock", "test.parquet.partial", "train.parquet.partial"]  # verl never reads a cut-off file
    monkeypatch.undo()
    assert to_verl_parquet.main(["--input", str(tmp_path / "u.jsonl"), "--output-dir", str(tmp_path / "out")]) == 0
    written = sorted(path.name for path in (tmp_path / "out").iterdir())
    assert written == [".lock", "parquet_report.json", "test.parquet", "train.parquet"]  # leftovers removed
