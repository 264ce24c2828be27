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
        assert main(["sft", "--base", str(d / "pre/last"), "--data", str(d / "corpus/sft_train.jsonl"),
                     "--objective", objective, "--out", str(d / objective), "--collapse", "standard",
                     "--heldout", str(d / "corpus/sft_heldout.jsonl"), *tiny]) == 0
    return d


def test_each_checkpoint_loads_and_generates(pipeline):
    prompt = [{"role": "user", "content": "Reverse: 1 2 3"}]
    for name, objective in (("pre/last", "pretrain"), ("ce/last", "ce"), ("ctc/last", "ctc")):
        model, tok, facts = mv.load_checkpoint(pipeline / name)
        assert facts.objective == objective
        ids = tok.apply_chat_template(prompt, add_generation_prompt=True)
        out = mv.generate(model, ids, steps=4, gen_length=8, block_length=8, **facts.sampler_kwargs())
        assert isinstance(out.texts(tok)[0], str)
    ctc_facts = mv.load_checkpoint(pipeline / "ctc/last").facts
    assert ctc_facts.slack_id == tok.convert_tokens_to_ids("<slack>") and ctc_facts.collapse == "standard"
    assert mv.load_checkpoint(pipeline / "ce/last").facts.slack_id is None


def test_ctc_run_logs_ce_ctc_throughput_and_held_out_loss(pipeline):
    logs = [json.loads(line) for line in (pipeline / "ctc/metrics.jsonl").read_text().splitlines()]
    train_logs = [h for h in logs if "loss" in h]
    assert train_logs and all({"ce", "ctc", "tokens_per_s"} <= set(h) for h in train_logs)
    evals = [h for h in logs if "eval_loss" in h]
    assert [h["step"] for h in evals] == [2, 4]
    assert all("eval_ce" in h and "eval_ctc" not in h for h in evals)  # held-out CE on original responses
    meta = json.loads((pipeline / "ctc/best/training.json").read_text())
    assert meta["best_step"] in (2, 4) and meta["best_eval_loss"] == min(h["eval_loss"] for h in evals)
    card = (pipeline / "ctc/last/README.md").read_text()
    assert "objective: ctc" in card and "steps: 4" in card and "eval_loss=" in card
    assert mv.load_checkpoint(pipeline / "ctc/best").facts.objective == "ctc"


def test_malformed_jsonl_names_file_and_line(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "a", "response": "b"}\n{not json}\n')
    with pytest.raises(DataError, match=r"bad.jsonl:2"):
        read_jsonl(bad)


def _sft(pipeline, out, *extra):
    return main(["sft", "--base", str(pipeline / "pre/last"), "--data", str(pipeline / "corpus/sft_train.jsonl"),
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
    a, b = _weights(tmp_path / "straight/last"), _weights(tmp_path / "resumed/last")
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_stop_after_is_a_resumable_prefix_of_the_full_schedule(pipeline, tmp_path):
    assert _sft(pipeline, tmp_path / "straight") == 0
    assert _sft(pipeline, tmp_path / "part", "--stop-after", "3") == 0
    meta = json.loads((tmp_path / "part/last/training.json").read_text())
    assert meta["steps"] == 3
    first = _weights(tmp_path / "part/last")
    # Asking again for the same prefix takes the complete checkpoint as it is: no step is taken.
    assert _sft(pipeline, tmp_path / "part", "--stop-after", "3", "--resume") == 0
    assert all(torch.equal(first[k], v) for k, v in _weights(tmp_path / "part/last").items())
    # Going on to --steps ends exactly where the uninterrupted run ends, and the reported wall
    # time includes the first part's.
    first_part_s = json.loads((tmp_path / "part/checkpoint-3/wall_time.json").read_text())["wall_time_s"]
    assert first_part_s > 0
    assert _sft(pipeline, tmp_path / "part", "--resume") == 0
    assert json.loads((tmp_path / "part/last/training.json").read_text())["wall_time_s"] >= first_part_s
    a, b = _weights(tmp_path / "straight/last"), _weights(tmp_path / "part/last")
    assert all(torch.equal(a[k], b[k]) for k in a)
    with pytest.raises(ValueError, match="--stop-after"):
        _sft(pipeline, tmp_path / "bad", "--stop-after", "7")


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
    assert len(list((tmp_path / "run").glob("incomplete-checkpoint-6-*"))) == 1
    monkeypatch.setattr(Trainer, "_save_optimizer_and_scheduler", real)
    assert _sft(pipeline, tmp_path / "run", "--resume") == 0
    assert (tmp_path / "run/last/model.safetensors").exists()


def test_a_nan_loss_stops_the_run_and_keeps_the_last_good_checkpoint(pipeline, tmp_path, monkeypatch):
    from train import objectives
    from train.trainer import last_complete_checkpoint

    real = objectives.sft_loss
    calls = {"n": 0}

    def nan_on_step_5(*a, **k):
        calls["n"] += 1
        loss = real(*a, **k)
        return loss * float("nan") if calls["n"] == 5 else loss

    monkeypatch.setattr(objectives, "sft_loss", nan_on_step_5)
    with pytest.raises(FloatingPointError, match="last good checkpoint"):
        _sft(pipeline, tmp_path / "run")
    assert last_complete_checkpoint(tmp_path / "run").name == "checkpoint-3"
    assert not (tmp_path / "run/last").exists()


def test_lora_ctc_trains_adapters_and_the_slack_rows_only(pipeline, tmp_path):
    assert _sft(pipeline, tmp_path / "lora", "--lora", "--lora-r", "4", "--lr", "0.05") == 0
    adapter = tmp_path / "lora/last"
    assert (adapter / "adapter_config.json").is_file() and not (adapter / "model.safetensors").exists()
    model, tok, facts = mv.load_checkpoint(adapter)
    assert facts.objective == "ctc" and facts.slack_id == tok.convert_tokens_to_ids("<slack>")
    merged = model.merge_and_unload().state_dict()
    base = _weights(pipeline / "pre/last")
    slack = facts.slack_id
    for name in ("model.transformer.wte.weight", "model.transformer.ff_out.weight"):
        changed = (merged[name] != base[name]).any(dim=1)
        assert changed[slack] and changed.sum() == 1, name  # only the <slack> row moved
    assert not torch.equal(merged["model.transformer.blocks.0.q_proj.weight"],
                           base["model.transformer.blocks.0.q_proj.weight"])  # LoRA merged in
    assert not torch.equal(merged["model.transformer.blocks.0.ff_out.weight"],
                           base["model.transformer.blocks.0.ff_out.weight"])  # the MLP down projection too


def test_4bit_paths_skip_cleanly_without_cuda(pipeline, tmp_path):
    if torch.cuda.is_available():
        pytest.skip("exercised on the GPU machine")
    with pytest.raises(ValueError, match="CUDA"):
        _sft(pipeline, tmp_path / "q", "--lora", "--load-in-4bit")


def test_pretraining_with_the_ctc_term(pipeline, tmp_path):
    assert main(["pretrain", "--tokenizer", str(pipeline / "tok"), "--data", str(pipeline / "corpus/pretrain.jsonl"),
                 "--out", str(tmp_path / "p"), "--objective", "ctc", "--seq-len", "32", "--d-model", "32",
                 "--layers", "1", "--heads", "2", "--mlp", "64", "--steps", "3", "--batch-size", "4",
                 "--log-every", "1", "--save-every", "10"]) == 0
    logs = [json.loads(x) for x in (tmp_path / "p/metrics.jsonl").read_text().splitlines()]
    assert all("ctc" in h and h["ctc"] > 0 for h in logs if "loss" in h)
    facts = mv.load_checkpoint(tmp_path / "p/last").facts
    assert facts.objective == "pretrain-ctc" and facts.slack_id is not None


def test_zero_pretraining_steps_save_the_initialised_model_for_sft_from_scratch(pipeline, tmp_path):
    args = ["pretrain", "--tokenizer", str(pipeline / "tok"), "--data", str(pipeline / "corpus/pretrain.jsonl"),
            "--seq-len", "32", "--d-model", "32", "--layers", "1", "--heads", "2", "--mlp", "64", "--seed", "3"]
    assert main([*args, "--out", str(tmp_path / "a"), "--steps", "0"]) == 0
    assert main([*args, "--out", str(tmp_path / "b"), "--steps", "0"]) == 0
    a, b = _weights(tmp_path / "a/last"), _weights(tmp_path / "b/last")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)  # the seed's initialisation
    meta = json.loads((tmp_path / "a/last/training.json").read_text())
    assert meta["steps"] == 0 and not (tmp_path / "a/metrics.jsonl").exists()
    assert main(["sft", "--base", str(tmp_path / "a/last"), "--generate", "copy", "--out", str(tmp_path / "s"),
                 "--steps", "2", "--batch-size", "2", "--log-every", "1", "--save-every", "2"]) == 0


def test_eval_reports_heldout_loss_and_accuracy_per_family(pipeline, tmp_path, capsys):
    out = tmp_path / "eval.json"
    assert main(["eval", "--checkpoint", str(pipeline / "ctc/last"), "--data", str(pipeline / "corpus/sft_heldout.jsonl"),
                 "--limit", "12", "--steps", "4", "--gen-length", "8", "--block-length", "8", "--out", str(out)]) == 0
    res = json.loads(out.read_text())
    assert res["objective"] == "ctc" and 1 <= res["n"] <= 12 and res["heldout_ce"] > 0
    assert 0.0 <= res["accuracy"] <= 1.0 and res["per_family"] and res["samples"]
    assert len(res["correct"]) == res["n"] and res["correct"].count("1") == round(res["accuracy"] * res["n"])
    # per-prompt outputs and committed <slack>, and accuracy split by whether the answer kept any
    assert len(res["outputs"]) == len(res["slack"]) == res["n"] and all(k >= 0 for k in res["slack"])
    split = res["slack_breakdown"]
    assert split["with_slack"]["n"] == sum(k > 0 for k in res["slack"])
    assert split["with_slack"]["n"] + split["without_slack"]["n"] == res["n"]
    right_without = sum(c == "1" for c, k in zip(res["correct"], res["slack"]) if k == 0)
    if split["without_slack"]["n"]:
        assert split["without_slack"]["accuracy"] == pytest.approx(right_without / split["without_slack"]["n"], abs=1e-4)
    # the held-out CE does not depend on how many prompts are decoded together (a card's command
    # reproduces the card's CE whatever batch it decodes in)
    assert main(["eval", "--checkpoint", str(pipeline / "ctc/last"), "--data", str(pipeline / "corpus/sft_heldout.jsonl"),
                 "--limit", "2", "--steps", "4", "--gen-length", "8", "--block-length", "8", "--batch-size", "1",
                 "--eos-last", "--out", str(tmp_path / "eval1.json")]) == 0
    one = json.loads((tmp_path / "eval1.json").read_text())
    assert one["heldout_ce"] == res["heldout_ce"] and one["sampler"]["confidence_eos_eot_inf"] is True
    # --against: the same prompts decoded by a second checkpoint, compared pairwise (a slack bias
    # reaches only the checkpoint that has <slack>)
    assert main(["eval", "--checkpoint", str(pipeline / "ctc/last"), "--against", str(pipeline / "ce/last"),
                 "--slack-bias", "1",
                 "--data", str(pipeline / "corpus/sft_heldout.jsonl"), "--limit", "12", "--steps", "4",
                 "--gen-length", "8", "--block-length", "8", "--out", str(out)]) == 0
    res = json.loads(out.read_text())
    vs = res["against"]
    assert vs["checkpoint"] == str(pipeline / "ce/last") and vs["difference"]["n"] == res["n"]
    assert vs["difference"]["diff"] == pytest.approx(res["accuracy"] - vs["accuracy"], abs=1e-3)
    lo, hi = vs["difference"]["ci"]
    assert lo <= vs["difference"]["diff"] <= hi
    assert all("reference_accuracy" in g for g in res["slack_breakdown"].values())
    assert len(vs["outputs"]) == res["n"]


def test_sft_ctc_adds_the_slack_token_when_the_base_lacks_it(tmp_path):
    """The LLaDA-8B path: its tokenizer has no <slack>; the token is added, the embeddings resized."""
    from mdlm_viz.testing import make_tiny_checkpoint

    base = make_tiny_checkpoint(tmp_path / "base", tokenizer_has_slack=False)
    before = mv.load_checkpoint(base)
    assert "<slack>" not in before.tokenizer.get_vocab()
    rows = before.model.get_input_embeddings().weight.shape[0]
    sampler = {"steps": 7, "gen_length": 24, "block_length": 8}
    (base / "generation_config.json").write_text(json.dumps(sampler))
    data = tmp_path / "sft.jsonl"
    data.write_text("\n".join(json.dumps({"prompt": "copy the cat", "response": "the cat"}) for _ in range(8)))
    assert main(["sft", "--base", str(base), "--data", str(data), "--objective", "ctc", "--out", str(tmp_path / "o"),
                 "--steps", "2", "--batch-size", "4", "--save-every", "10", "--lora", "--lora-r", "2"]) == 0
    model, tok, facts = mv.load_checkpoint(tmp_path / "o/last")
    assert facts.slack_id == tok.convert_tokens_to_ids("<slack>") == rows
    assert model.get_input_embeddings().weight.shape[0] == rows + 1
    # the fine-tune keeps its base's sampler defaults, so `eval` decodes it as the base is decoded
    assert {k: facts.defaults.get(k) for k in sampler} == sampler


def test_missing_data_file_says_what_is_missing(pipeline, tmp_path):
    with pytest.raises(DataError, match="no such file"):
        main(["sft", "--base", str(pipeline / "pre/last"), "--data", str(tmp_path / "nope.jsonl"),
              "--out", str(tmp_path / "o")])


def test_sft_reads_hugging_face_datasets(pipeline, tmp_path):
    pytest.importorskip("datasets")
    from train.data import read_records

    local = tmp_path / "chat_ds"
    local.mkdir()
    rows = [{"messages": [{"role": "user", "content": "copy 1 0 0"}, {"role": "assistant", "content": "1 0 0"}]}] * 6
    (local / "train.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    assert len(read_records(f"hf:{local}")) == 6
    assert main(["sft", "--base", str(pipeline / "pre/last"), "--data", f"hf:{local}", "--objective", "ce",
                 "--out", str(tmp_path / "o"), "--steps", "1", "--batch-size", "2", "--save-every", "5"]) == 0
    with pytest.raises(DataError, match="could not load the dataset"):
        read_records("hf:allenai/no-such-dataset-offline")


def test_nan_gradients_stop_the_run_before_the_weights_change(pipeline, tmp_path, monkeypatch):
    from train.trainer import DiffusionTrainer, last_complete_checkpoint

    real = DiffusionTrainer.compute_loss

    class NaNGradient(torch.autograd.Function):  # identity forward, NaN backward
        @staticmethod
        def forward(ctx, x):
            return x.clone()

        @staticmethod
        def backward(ctx, g):
            return g * float("nan")

    def nan_grads_on_step_5(self, model, inputs, *a, **k):
        loss = real(self, model, inputs, *a, **k)
        return NaNGradient.apply(loss) if self.state.global_step == 4 else loss  # finite loss, NaN gradients

    monkeypatch.setattr(DiffusionTrainer, "compute_loss", nan_grads_on_step_5)
    with pytest.raises(FloatingPointError, match="non-finite"):
        _sft(pipeline, tmp_path / "run")
    assert last_complete_checkpoint(tmp_path / "run").name == "checkpoint-3"


def test_flat_weighting_is_recorded_and_every_checkpoint_loads_on_its_own(pipeline, tmp_path):
    assert _sft(pipeline, tmp_path / "flat", "--weighting", "flat") == 0
    assert _sft(pipeline, tmp_path / "elbo") == 0
    meta = json.loads((tmp_path / "flat/last/training.json").read_text())
    assert meta["weighting"] == "flat" and meta["hyperparameters"]["weighting"] == "flat"
    flat, elbo = _weights(tmp_path / "flat/last"), _weights(tmp_path / "elbo/last")
    assert any(not torch.equal(flat[k], elbo[k]) for k in flat)  # same batches and noise, another loss
    ckpt = mv.load_checkpoint(tmp_path / "flat/checkpoint-3")  # tokenizer saved with each checkpoint
    assert ckpt.tokenizer is not None and ckpt.facts.slack_id is not None
