"""End to end on micro configs: corpus -> tokenizer -> pretrain -> sft ce / sft ctc -> load and generate."""

import json

import pytest
import torch

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


def _sft(pipeline, out, *extra):
    return main(["sft", "--base", str(pipeline / "pre/final"), "--data", str(pipeline / "corpus/sft_train.jsonl"),
                 "--objective", "ctc", "--out", str(out), "--steps", "6", "--batch-size", "4", "--save-every", "3",
                 "--log-every", "3", "--warmup", "1", *extra])


def _weights(path):
    return mv.load_checkpoint(path).model.state_dict()


def test_resumed_run_ends_with_the_same_weights(pipeline, tmp_path, monkeypatch):
    from train.trainer import DiffusionTrainer

    assert _sft(pipeline, tmp_path / "straight") == 0
    real = DiffusionTrainer.compute_loss

    def killed_after_step_3(self, *a, **k):
        if self.state.global_step == 4:
            raise KeyboardInterrupt("simulated kill")
        return real(self, *a, **k)

    monkeypatch.setattr(DiffusionTrainer, "compute_loss", killed_after_step_3)
    with pytest.raises(KeyboardInterrupt):
        _sft(pipeline, tmp_path / "resumed")
    monkeypatch.setattr(DiffusionTrainer, "compute_loss", real)
    assert _sft(pipeline, tmp_path / "resumed", "--resume") == 0
    a, b = _weights(tmp_path / "straight/final"), _weights(tmp_path / "resumed/final")
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_a_kill_during_a_save_never_leaves_a_corrupt_latest(pipeline, tmp_path, monkeypatch):
    from transformers import Trainer

    from train.trainer import last_complete_checkpoint

    real = Trainer._save_optimizer_and_scheduler

    def dies_while_saving_step_6(self, output_dir):
        if output_dir.endswith("checkpoint-6"):
            raise KeyboardInterrupt("killed mid-save")
        return real(self, output_dir)

    monkeypatch.setattr(Trainer, "_save_optimizer_and_scheduler", dies_while_saving_step_6)
    with pytest.raises(KeyboardInterrupt):
        _sft(pipeline, tmp_path / "run")
    assert (tmp_path / "run/checkpoint-6/model.safetensors").exists()  # half written
    assert last_complete_checkpoint(tmp_path / "run").name == "checkpoint-3"
    assert (tmp_path / "run/checkpoint-6.incomplete").is_dir()
    monkeypatch.setattr(Trainer, "_save_optimizer_and_scheduler", real)
    assert _sft(pipeline, tmp_path / "run", "--resume") == 0
    assert (tmp_path / "run/final/model.safetensors").exists()
