"""End to end on micro configs: corpus -> tokenizer -> pretrain -> sft ce / sft ctc -> load and generate."""

import json

import pytest

import mdlm_viz as mv
from train.__main__ import main
from train.data import DataError, read_jsonl


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    d = tmp_path_factory.mktemp("e2e")
    assert main(["corpus", "--out", str(d / "corpus"), "--sources", "--tasks", "200", "--offline"]) == 0
    assert main(["tokenizer", "--corpus", str(d / "corpus"), "--out", str(d / "tok"), "--vocab-size", "400"]) == 0
    tiny = ["--steps", "4", "--batch-size", "4", "--log-every", "2", "--save-every", "2", "--warmup", "1"]
    assert main(["pretrain", "--tokenizer", str(d / "tok"), "--data", str(d / "corpus/pretrain.jsonl"),
                 "--out", str(d / "pre"), "--seq-len", "32", "--d-model", "32", "--layers", "1", "--heads", "2",
                 "--mlp", "64", *tiny]) == 0
    for objective in ("ce", "ctc"):
        assert main(["sft", "--base", str(d / "pre/final"), "--data", str(d / "corpus/sft_train.jsonl"),
                     "--objective", objective, "--out", str(d / objective), "--collapse", "standard", *tiny]) == 0
    return d


def test_each_checkpoint_loads_and_generates(pipeline):
    prompt = [{"role": "user", "content": "Reverse: 1 2 3"}]
    for name, objective in (("pre/final", "pretrain"), ("ce/final", "ce"), ("ctc/final", "ctc")):
        model, tok, facts = mv.load_checkpoint(pipeline / name)
        assert facts.objective == objective
        ids = tok.apply_chat_template(prompt, add_generation_prompt=True)
        out = mv.generate(model, ids, steps=4, gen_length=8, block_length=8, **facts.sampler_kwargs())
        assert isinstance(out.texts(tok)[0], str)
    ctc_facts = mv.load_checkpoint(pipeline / "ctc/final").facts
    assert ctc_facts.slack_id == tok.convert_tokens_to_ids("<slack>") and ctc_facts.collapse == "standard"
    assert mv.load_checkpoint(pipeline / "ce/final").facts.slack_id is None


def test_ctc_run_logs_ce_and_ctc_apart(pipeline):
    meta = json.loads((pipeline / "ctc/final/training.json").read_text())
    logged = [h for h in meta["log_history"] if "ctc" in h]
    assert logged and all("ce" in h for h in logged) and meta["steps"] == 4


def test_malformed_jsonl_names_file_and_line(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "a", "response": "b"}\n{not json}\n')
    with pytest.raises(DataError, match=r"bad.jsonl:2"):
        read_jsonl(bad)
