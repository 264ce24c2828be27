"""Corpus builder and tokenizer trainer (train/corpus/, train/tokenizer.py).

Offline and fast: only the built-in task generator and tiny inline texts; package fetching is
disabled so nothing here can reach a registry.
"""

import argparse
import json
import re

import pytest

from train import corpus, tokenizer
from train.corpus import fetch, readers, stories

# An independent reader of English number words, to check the generator's speller against.
_UNITS = {w: i for i, w in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
    "sixteen seventeen eighteen nineteen".split())}
_TENS = {"twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80, "ninety": 90}


def words_to_int(text: str) -> int:
    total, current = 0, 0
    for word in text.replace("-", " ").split():
        if word in _UNITS:
            current += _UNITS[word]
        elif word in _TENS:
            current += _TENS[word]
        elif word == "hundred":
            current *= 100
        elif word == "thousand":
            total, current = total + current * 1000, 0
        else:
            raise ValueError(word)
    return total + current


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise RuntimeError("tests must not download packages")
    monkeypatch.setattr(fetch, "_fetch_deb", refuse)
    monkeypatch.setattr(fetch, "_fetch_pypi", refuse)


@pytest.fixture
def no_system_packages(monkeypatch):
    """Make installed Debian/PyPI data invisible, so results do not depend on the machine."""
    monkeypatch.setattr(fetch, "_system_root", lambda pkg: None)


@pytest.fixture(scope="module")
def tasks():
    return corpus.generate_tasks(700, seed=0)


def _by_family(examples):
    out = {}
    for ex in examples:
        out.setdefault(ex.family, []).append(ex)
    return out


# ---------------------------------------------------------------------------------------------
# Generator


def test_generator_is_deterministic_under_its_seed(tasks):
    assert corpus.generate_tasks(700, seed=0) == tasks
    other = corpus.generate_tasks(700, seed=1)
    assert [e.prompt for e in other] != [e.prompt for e in tasks]


def test_every_family_present_in_equal_numbers(tasks):
    families = _by_family(tasks)
    assert set(families) == set(corpus.FAMILIES)
    assert all(len(v) == 100 for v in families.values())
    assert len({e.prompt for e in tasks}) == len(tasks)  # prompts are distinct
    assert all(e.source == "generator" for e in tasks)
    assert all(e.answer == e.response for e in tasks if e.family in corpus.EXACT_FAMILIES)
    assert all(e.answer is None for e in tasks if e.family == "story")  # open-ended: judged by its grammar


def test_answers_are_correct(tasks):
    for ex in tasks:
        m, p, a = ex.meta, ex.prompt, ex.answer
        if ex.family == "arithmetic":
            assert str(m["a"]) in p and str(m["b"]) in p
            assert int(a) == (m["a"] + m["b"] if m["op"] == "add" else m["a"] - m["b"]) >= 0
        elif ex.family == "reverse":
            assert " ".join(m["items"]) in p
            assert a.split() == m["items"][::-1]
        elif ex.family == "sort":
            assert " ".join(map(str, m["items"])) in p
            assert [int(x) for x in a.split()] == sorted(m["items"], reverse=m["descending"])
            assert ("largest to smallest" in p or "descending" in p) == m["descending"]
        elif ex.family == "spell":
            if m["to"] == "words":
                assert re.search(rf"\b{m['n']}\b", p) and words_to_int(a) == m["n"]
            else:
                words = re.sub(r"^(Write|What number is) | in digits\.$|\?$", "", p)
                assert words_to_int(words) == m["n"] == int(a)
        elif ex.family == "copy":
            assert p.endswith(a) and a.split() == m["items"]
        elif ex.family == "story":
            assert a is None and stories.accepts(ex.response, m["name"], m["animal"])
            assert m["name"] in p and m["animal"] in p
            continue
        elif ex.family == "count":
            expected = {"items": lambda: len(m.get("items", ())), "length": lambda: len(m.get("word", "")),
                        "letter": lambda: m.get("word", "").count(m.get("letter", ""))}[m["kind"]]()
            assert int(a) == expected
        assert m["repeats"] == corpus.has_adjacent_repeat(a)


def test_spelled_numbers_spot_checks():
    assert corpus.number_to_words(100) == "one hundred"
    assert corpus.number_to_words(1100) == "one thousand one hundred"
    assert corpus.number_to_words(2000) == "two thousand"
    assert corpus.number_to_words(33) == "thirty-three"
    assert corpus.number_to_words(0) == "zero"
    assert all(words_to_int(corpus.number_to_words(n)) == n for n in range(0, 100_000, 37))


def test_collapse_prone_numbers_present(tasks):
    """The paper's failure case: '100' -> '10' when adjacent repeats merge."""
    families = _by_family(tasks)
    trailing_zeros = re.compile(r"\b[1-9]\d*00\b")
    repeated_digit = re.compile(r"\b\d*([1-9])\1\d*\b")
    for family in ("copy", "spell", "arithmetic"):
        texts = [e.prompt + " " + e.answer for e in families[family]]
        assert any(trailing_zeros.search(t) for t in texts), family
        assert any(repeated_digit.search(t) for t in texts), family
    arithmetic = families["arithmetic"]
    assert sum(e.meta["repeats"] for e in arithmetic) >= 0.3 * len(arithmetic)
    assert corpus.has_adjacent_repeat("100") and corpus.has_adjacent_repeat("dog dog cat")
    assert not corpus.has_adjacent_repeat("101") and not corpus.has_adjacent_repeat("letter")


# ---------------------------------------------------------------------------------------------
# build_corpus


def _read_jsonl(path):
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_build_corpus_generator_only(tmp_path, no_system_packages, capsys):
    m = corpus.build_corpus(tmp_path / "a", sources=(), n_tasks=600, cache_dir=tmp_path / "cache")
    out = tmp_path / "a"
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest == json.loads(json.dumps(m.to_dict()))
    assert set(manifest["sources"]) == set(corpus.ALL_SOURCES)
    assert not any(s["found"] for s in manifest["sources"].values())
    assert all(s["reason"] for s in manifest["sources"].values())

    for name, info in manifest["files"].items():
        assert fetch.sha256_file(out / name) == info["sha256"]
        assert len(_read_jsonl(out / name)) == info["records"]
    train, heldout = _read_jsonl(out / "sft_train.jsonl"), _read_jsonl(out / "sft_heldout.jsonl")
    counts = manifest["counts"]
    assert counts["sft_train"]["examples"] + counts["sft_heldout"]["examples"] == 600 == len(train) + len(heldout)
    assert 0 < len(heldout) < 0.15 * 600
    assert set(counts["sft_train"]["by_family"]) == set(corpus.FAMILIES)

    # Held out by task, not by wording: neither the prompt nor the underlying task is shared.
    def task(r):
        return r["family"], json.dumps({k: v for k, v in r["meta"].items() if k != "repeats"}, sort_keys=True)
    prompt = lambda r: r["messages"][0]["content"]  # noqa: E731
    assert not {prompt(r) for r in train} & {prompt(r) for r in heldout}
    assert not {task(r) for r in train} & {task(r) for r in heldout}
    pretrain = [d["text"] for d in _read_jsonl(out / "pretrain.jsonl")]
    assert not any(t.startswith(prompt(r) + "\n") for r in heldout for t in pretrain)
    record = train[0]
    assert [msg["role"] for msg in record["messages"]] == ["user", "assistant"]
    assert record["answer"] == record["messages"][1]["content"]

    # Same seed: byte-identical files; another seed: different ones.
    again = corpus.build_corpus(tmp_path / "b", sources=(), n_tasks=600, cache_dir=tmp_path / "cache")
    assert again.files == m.files
    other = corpus.build_corpus(tmp_path / "c", seed=1, sources=(), n_tasks=600, cache_dir=tmp_path / "cache")
    assert other.files["sft_train.jsonl"]["sha256"] != m.files["sft_train.jsonl"]["sha256"]


def test_missing_source_is_recorded_and_skipped(tmp_path, no_system_packages, capsys):
    m = corpus.build_corpus(tmp_path / "out", sources=("wordnet", "quiz"), n_tasks=60, cache_dir=tmp_path / "empty")
    assert not m.sources["wordnet"].found and "wordnet-base" in m.sources["wordnet"].reason
    assert m.sources["austen"].reason == "not requested"
    assert "warning: source wordnet skipped" in capsys.readouterr().out
    assert m.counts["sft_train"]["examples"] + m.counts["sft_heldout"]["examples"] == 60


def test_quiz_reader_on_inline_tables(tmp_path):
    base = tmp_path / "usr/share/games/bsdgames/quiz"
    base.mkdir(parents=True)
    (base / "europe").write_text("Austria:Vienna|Wien\n{The }Gambia:Banjul\nIceland:Reykjav['i|i'|i]k\n")
    (base / "babies").write_text("cub:lion|tiger\n")
    (base / "pres").write_text("{G{eorge} }Washington:1789-{17}97:{J{ohn} }Adams:\\\n{J{ohn} }Adams\n")
    got = {e.prompt: e.answer for e in readers.read_quiz({"bsdgames": tmp_path}).examples}
    assert got["What is the capital of Austria?"] == "Vienna"
    assert got["What is the capital of The Gambia?"] == "Banjul"
    assert got["What is the capital of Iceland?"] == "Reykjavík"
    assert got["What is a baby tiger called?"] == "cub"
    assert got["Who became US president after George Washington?"] == "John Adams"
    assert got["In which years was George Washington US president?"] == "1789-1797"


def test_cli_offline_generator_only(tmp_path, no_system_packages):
    parser = argparse.ArgumentParser()
    corpus.add_arguments(parser)
    args = parser.parse_args(["--out", str(tmp_path / "out"), "--sources", "--tasks", "60", "--seed", "3",
                              "--offline", "--cache", str(tmp_path / "cache")])
    assert corpus.run(corpus.CorpusConfig.from_args(args)) == 0
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["seed"] == 3 and manifest["params"]["n_tasks"] == 60


def test_every_command_line_is_its_config():
    """Each command's flags are its config's fields, with the config's defaults; a config survives
    the JSON trip a parallel fine-tune takes (train/parallel.py)."""
    from dataclasses import asdict, fields

    from train.__main__ import COMMANDS, build_parser
    from train.run import SFTConfig

    required = {"corpus": ["--out", "o"], "tokenizer": ["--corpus", "c", "--out", "o"],
                "pretrain": ["--tokenizer", "t", "--data", "d", "--out", "o"], "sft": ["--base", "b", "--out", "o"],
                "eval": ["--checkpoint", "c", "--data", "d"],
                "robustness": ["--models", "a=b", "--data", "d", "--out", "o"],
                "demo-check": ["--models", "a=b", "c=d", "--data", "d"], "recipe": ["embedded"]}
    assert set(required) == set(COMMANDS)
    parser = build_parser()
    for command, argv in required.items():
        args = parser.parse_args([command, *argv])
        config_type = COMMANDS[command][1]
        flags = {k for k in vars(args) if not k.startswith("_")} - {"command"}
        assert flags == {f.name for f in fields(config_type)}, command
        # every flag left out takes the config's default
        given = {f.name for f in fields(config_type) if f"--{f.name.replace('_', '-')}" in argv} | {"name"}
        cfg, default = asdict(config_type.from_args(args)), asdict(config_type())
        assert {k: v for k, v in cfg.items() if k not in given} == {k: v for k, v in default.items() if k not in given}
    cfg = SFTConfig(base="b", out="o", generate=["copy", "copy"], objective="ctc", heldout=["h.jsonl"])
    assert SFTConfig.from_json(cfg.to_json()) == cfg
    assert cfg.describe() == ("SFTConfig(out='o', heldout=['h.jsonl'], base='b', generate=['copy', 'copy'], "
                              "objective='ctc')")


# ---------------------------------------------------------------------------------------------
# Tokenizer


TEXTS = [
    "The cat sat on the mat.  Two spaces, a tab\there, and a new line\nhere.",
    "It is a truth universally acknowledged, that a single man in possession of a good fortune must be in want of a wife.",
    "What is 1000 plus 100? 1100. Copy: 2000 33 7 0 0",
    "Caf\u00e9 na\u00efve \u65e5\u672c -- \"quoted\" (parens) it's",
]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("tok")
    corpus_dir = root / "corpus"
    corpus_dir.mkdir()
    with open(corpus_dir / "pretrain.jsonl", "w", encoding="utf-8") as f:
        for i in range(30):
            for t in TEXTS:
                f.write(json.dumps({"text": t, "source": "inline"}) + "\n")
    record = {"messages": [{"role": "user", "content": "Reverse: 1 2 3"}, {"role": "assistant", "content": "3 2 1"}]}
    (corpus_dir / "sft_train.jsonl").write_text(json.dumps(record) + "\n")
    out = root / "out"
    return tokenizer.train_tokenizer(corpus_dir, out, vocab_size=400), out


def test_special_tokens_have_fixed_ids(trained):
    tok, _ = trained
    assert tok.convert_tokens_to_ids(list(tokenizer.SPECIAL_TOKENS)) == list(range(7))
    assert tokenizer.special_token_ids(tok) == {"bos": 0, "eos": 1, "pad": 1, "mask": 5, "eot": 2, "slack": 6}
    assert (tok.bos_token, tok.eos_token, tok.pad_token, tok.mask_token) == (
        "<|startoftext|>", "<|endoftext|>", "<|endoftext|>", "<|mdm_mask|>")
    assert tokenizer.config_token_ids(tok)["slack_token_id"] == 6
    assert 300 < len(tok) <= 400


def test_digits_are_one_token_each(trained):
    tok, _ = trained
    assert tok.tokenize("1100") == ["1", "1", "0", "0"]
    assert len(tok.encode("1100")) == 4
    assert tok.tokenize("2000 33") == ["2", "0", "0", "0", "Ġ3", "3"]  # the space rides on the next digit
    assert tok.tokenize("Reverse: 1 2 3")[-3:] == ["Ġ1", "Ġ2", "Ġ3"]  # no separator token between items


def test_round_trip_and_no_automatic_bos(trained):
    tok, _ = trained
    for text in TEXTS + ["  leading and trailing  ", "unseen: \u00a7\u00b6 \U0001f600 zxqv"]:
        ids = tok.encode(text)
        assert tok.decode(ids) == text
        assert ids[:1] != [tok.bos_token_id]


def test_chat_template(trained):
    tok, _ = trained
    messages = [{"role": "user", "content": "Copy: 100"}]
    text = tok.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    assert text == ("<|startoftext|><|start_header_id|>user<|end_header_id|>\n\nCopy: 100<|eot_id|>"
                    "<|start_header_id|>assistant<|end_header_id|>\n\n")
    ids = tok.apply_chat_template(messages, add_generation_prompt=True, tokenize=True, return_dict=False)
    assert ids[0] == tok.bos_token_id and tok.decode(ids) == text
    ids_end = tok.convert_tokens_to_ids(["<|start_header_id|>"]) + tok.encode("assistant") + \
        tok.convert_tokens_to_ids(["<|end_header_id|>"]) + tok.encode("\n\n")
    assert ids[-len(ids_end):] == ids_end
    full = tok.apply_chat_template(messages + [{"role": "assistant", "content": "100"}], tokenize=False)
    assert full.endswith("<|start_header_id|>assistant<|end_header_id|>\n\n100<|eot_id|>")


def test_skip_special_tokens_drops_mask_and_slack(trained):
    tok, _ = trained
    ids = tok.encode("3 2") + [tokenizer.special_token_ids(tok)["slack"]] + tok.encode(" 1") + \
        [tok.mask_token_id, tok.eos_token_id]
    assert tok.decode(ids, skip_special_tokens=True) == "3 2 1"
    assert "<slack>" in tok.decode(ids)


def test_saved_tokenizer_reloads(trained):
    from transformers import AutoTokenizer
    tok, out = trained
    loaded = AutoTokenizer.from_pretrained(out)
    assert tokenizer.special_token_ids(loaded) == tokenizer.special_token_ids(tok)
    assert loaded.encode(TEXTS[2]) == tok.encode(TEXTS[2])
    messages = [{"role": "user", "content": "hi"}]
    assert loaded.apply_chat_template(messages, add_generation_prompt=True, tokenize=False) == \
        tok.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    assert loaded.decode([loaded.mask_token_id, 6], skip_special_tokens=True) == ""


def test_exported_lineage_carries_no_machine_paths(tmp_path, monkeypatch):
    """A stage started with absolute paths records them; the export writes them as the recipe's
    --out was given, so the shipped cards name runs/embedded/..., not one machine's home."""
    from pathlib import Path

    from train.recipe import portable

    monkeypatch.chdir(tmp_path)
    (tmp_path / "runs").mkdir()
    home = str(tmp_path.resolve() / "runs")
    record = [{"base": home + "/pretrain/last", "hyperparameters": {"data": [home], "out": home + "-other"},
               "other": "/elsewhere/runs", "steps": 3}]
    got = portable(record, Path("runs"))
    assert got[0]["base"] == "runs/pretrain/last" and got[0]["hyperparameters"]["data"] == ["runs"]
    assert got[0]["hyperparameters"]["out"] == home + "-other"  # a sibling directory is not inside out
    assert got[0]["other"] == "/elsewhere/runs" and got[0]["steps"] == 3


def test_recipes_differ_only_where_the_attempt_says():
    """`attempt5` (shipped before attempt 9) has a single base stage; `copy-first` (attempt 6) adds a
    copy stage before a shorter base, everything else shared, and never exports over assets/ by
    default; each later attempt changes what its comment says; `embedded` is attempt 9."""
    from dataclasses import fields, replace

    from train.__main__ import build_parser
    from train.recipe import RECIPES

    embedded, staged = RECIPES["attempt5"], RECIPES["copy-first"]  # attempt 5, shipped before attempt 9
    assert embedded.copy_first is None and staged.copy_first.generate == ["copy"]
    differ = {f.name for f in fields(embedded) if getattr(embedded, f.name) != getattr(staged, f.name)}
    assert differ == {"copy_first", "base", "share_ce_copy"}
    focus = RECIPES["copy-focus"]  # attempt 7: one base schedule whose first half is copy alone
    changed = {f.name for f in fields(embedded) if getattr(embedded, f.name) != getattr(focus, f.name)}
    assert changed == {"base", "own_base"}
    assert focus.base.focus == ["copy"] and focus.base.focus_fraction == 0.5 and focus.own_base == ("ctc",)
    story = RECIPES["copy-story"]  # attempt 8: attempt 7 with a story share in the copy half
    assert {f.name for f in fields(focus) if getattr(focus, f.name) != getattr(story, f.name)} == {"base"}
    assert story.base.focus == ["copy"] * 3 + ["story"] and replace(story.base, focus=["copy"]) == focus.base
    branch = RECIPES["copy-branch"]  # attempt 9: attempt 8 with ctc's base branched after the copy half
    assert {f.name for f in fields(story) if getattr(story, f.name) != getattr(branch, f.name)} == {"branch_at", "branch"}
    assert branch.branch_at * 2 == branch.base.steps == branch.branch_at + branch.branch.steps
    assert branch.branch.focus == [] and branch.branch.generate == branch.base.generate
    assert RECIPES["embedded"] is branch  # attempt 9 is what ships
    share = RECIPES["copy-share"]  # attempt 10: attempt 9 with <slack> in half of the CTC responses
    assert {f.name for f in fields(branch) if getattr(branch, f.name) != getattr(share, f.name)} == {"slack_share"}
    assert share.objective("ctc")["slack_share"] == share.objective("ctc-standard")["slack_share"] == 0.5
    assert "slack_share" not in share.objective("ce")  # CE has no <slack> to share
    assert branch.objective("ctc")["slack_share"] == 1.0
    args = build_parser().parse_args(["recipe", "copy-first"])
    assert args.name == "copy-first" and args.assets == "" and args.out == ""
