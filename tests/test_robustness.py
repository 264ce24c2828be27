"""The shift-robustness evaluation on micro models: prompt selection, the likelihood judge, the sweep, the CLI.
Its statistics are tested in test_stats.py."""

import json
import shutil

import pytest
import torch

import mdlm_viz as mv
from mdlm_viz import robustness as rb
from mdlm_viz.figures import robustness_figure
from mdlm_viz.report import comparison_table, markdown_table
from mdlm_viz.testing import make_tiny_checkpoint


def test_select_prompts_round_robin():
    ps = [rb.EvalPrompt([{"role": "user", "content": f"{f}{i}"}], "x", f) for f in "aab" for i in range(3)]
    got = rb.select_prompts(ps, 5)
    assert [p.family for p in got] == ["a", "b", "a", "b", "a"]
    assert len(rb.select_prompts(ps, 100)) == len(ps)


def test_adjacent_repeat():
    assert rb.has_adjacent_repeat([1, 0, 0]) and not rb.has_adjacent_repeat([1, 0, 1, 0])


def test_likelihood_noise_is_shared_across_batches(tiny_checkpoint):
    model, tok, facts = mv.load_checkpoint(tiny_checkpoint)
    prompt = tok("copy the cat", add_special_tokens=False)["input_ids"]
    other = tok("reverse : 1 0 2 the dog ran", add_special_tokens=False)["input_ids"]
    resp = tok("the cat", add_special_tokens=False)["input_ids"]
    kw = dict(mask_id=facts.mask_id, eos_id=facts.eos_id, samples=3, seed=0)
    alone = rb.diffusion_log_likelihood(model, [prompt], [resp], **kw)[0]
    padded = rb.diffusion_log_likelihood(model, [other, prompt], [resp + resp, resp], **kw)[1]
    assert alone == pytest.approx(padded, abs=1e-4)  # same noise whatever the batch and padding
    assert alone < 0
    assert rb.diffusion_log_likelihood(model, [prompt], [resp], **{**kw, "seed": 1})[0] != alone


def _prompts(tok):
    exact = [rb.EvalPrompt([{"role": "user", "content": "copy : 1 0 2"}], "1 0 2", "copy", True),
             rb.EvalPrompt([{"role": "user", "content": "reverse : the cat"}], "cat the", "reverse", True),
             rb.EvalPrompt([{"role": "user", "content": "copy : 0 0 1"}], "0 0 1", "copy", True)]
    open_ = [rb.EvalPrompt([{"role": "user", "content": "the dog ran ?"}], "a dog sat on the mat", "chat", False)]
    return exact + open_


@pytest.mark.parametrize("which", ["plain", "ctc"])
def test_sweep_on_micro_models(which, tiny_checkpoint, tiny_ctc_checkpoint):
    path = tiny_checkpoint if which == "plain" else tiny_ctc_checkpoint
    ck = tuple(mv.load_checkpoint(path))
    prompts = _prompts(ck[1])
    cfg = rb.SweepConfig(strengths=(0.0, 0.25), seeds=(0, 1), gen_length=8, steps=8, block_length=8, batch_size=3,
                         judge_samples=2, n_boot=50, decode_r0=True)
    res = rb.run_sweep({"m": ck}, prompts, cfg, progress=lambda s: None)
    m = res["models"]["m"]
    r0, r25 = m["by_strength"]
    assert m["r0_identical"] == len(prompts) * len(cfg.seeds)  # paired outputs identical at r = 0
    assert r0["win_rate"] == 0.5 and r0["displacements"] == 0 and r0["changed"] == 0
    assert r25["displacements"] + r25["unapplied"] == 2 * len(prompts) * len(cfg.seeds)  # 0.25 * 8 per output
    assert r25["displacements"] > 0  # interventions happened and were logged
    assert 0 <= r25["win_rate"] <= 1 and 0 <= r25["accuracy"] <= 1
    assert res["surface_form"]["n"] == 1  # "0 0 1" has adjacent repeats
    if which == "plain":
        assert r25["slack_per_displacement"] is None  # no slack token: nothing to absorb with
    else:
        assert isinstance(r25["slack_per_displacement"], float)
    json.dumps(res)  # plain data
    fig = robustness_figure(res)
    assert len(fig.data) == 1 and list(fig.data[0].x) == [0.0, 25.0]


def test_robustness_cli_quick(tmp_path, tiny_checkpoint, tiny_ctc_checkpoint):
    from train.__main__ import main

    data = tmp_path / "heldout.jsonl"
    rows = [{"messages": [{"role": "user", "content": "copy : 1 0"}, {"role": "assistant", "content": "1 0"}],
             "family": "copy", "answer": "1 0"},
            {"messages": [{"role": "user", "content": "the cat ?"}, {"role": "assistant", "content": "the mat"}],
             "family": "chat"}] * 5
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "eval"
    assert main(["robustness", "--models", f"ce={tiny_checkpoint}", f"ctc={tiny_ctc_checkpoint}", "--data", str(data),
                 "--out", str(out), "--quick"]) == 0
    res = json.loads((out / "robustness.json").read_text())
    assert set(res["models"]) == {"ce", "ctc"} and res["n_prompts"] == 8
    assert res["families"] == {"chat": 4, "copy": 4}
    # ctc is compared with ce (the default reference) pairwise on the same prompts
    assert res["reference"] == "ce" and set(res["comparisons"]) == {"ctc"}
    comp = res["comparisons"]["ctc"]
    ce_clean = res["models"]["ce"]["per_prompt"]["clean_correct"]
    ctc_clean = res["models"]["ctc"]["per_prompt"]["clean_correct"]
    exact = [i for i, v in enumerate(ce_clean) if v is not None]
    assert len(exact) == 4 and comp["clean_accuracy"]["n"] == 4
    assert comp["clean_accuracy"]["diff"] == pytest.approx(
        res["models"]["ctc"]["clean"]["accuracy"] - res["models"]["ce"]["clean"]["accuracy"])
    assert comp["clean_accuracy"]["diff"] == pytest.approx(sum(ctc_clean[i] - ce_clean[i] for i in exact) / 4)
    assert set(comp["win_rate"]) == {"0.1"}
    top = res["models"]["ctc"]["by_strength"][-1]["win_rate"] - res["models"]["ce"]["by_strength"][-1]["win_rate"]
    assert comp["win_rate"]["0.1"]["diff"] == pytest.approx(top)
    assert "| ctc |" in comparison_table(res)
    assert "| ce |" in markdown_table(res) and "| ctc |" in markdown_table(res)
    with pytest.raises(ValueError, match="not one of the swept"):
        main(["robustness", "--models", f"ce={tiny_checkpoint}", "--reference", "ctc", "--data", str(data),
              "--out", str(out), "--quick"])
    assert (out / "robustness_win_rate.html").stat().st_size < 100_000  # plotly.js from its CDN, not inlined
    with pytest.raises(ValueError, match="NAME=PATH"):
        main(["robustness", "--models", str(tiny_checkpoint), "--data", str(data), "--out", str(out)])
    # --slack-bias: applied to the checkpoint with <slack> only; a huge bias leaves no slack to absorb with
    slack_only = make_tiny_checkpoint(tmp_path / "slack_only", slack=True, collapse="slack")
    # (and a judge that is a directory, not one of the swept models)
    assert main(["robustness", "--models", f"ctc={slack_only}", "--judge", str(tiny_checkpoint), "--data", str(data),
                 "--out", str(out), "--quick", "--slack-bias", "1000"]) == 0
    res = json.loads((out / "robustness.json").read_text())
    assert set(res["models"]) == {"ctc"} and res["judge"]["checkpoint"] == str(tiny_checkpoint)
    assert res["config"]["slack_bias"] == 1000 and res["command"].endswith("--slack-bias 1000")
    assert all(row["slack_per_displacement"] in (0.0, None) for row in res["models"]["ctc"]["by_strength"])
    with pytest.raises(ValueError, match="neither one of --models"):
        main(["robustness", "--models", f"ctc={slack_only}", "--judge", "nobody", "--data", str(data),
              "--out", str(out), "--quick"])


def test_recipe_quick_end_to_end(tmp_path):
    from train.__main__ import main

    # QUICK has every stage any recipe has (copy-first's copy stages included), so this covers both.
    # --jobs 3: the three bases side by side, each a chain of stages in a process of its own.
    assert main(["recipe", "embedded", "--quick", "--out", str(tmp_path / "runs"), "--assets",
                 str(tmp_path / "assets"), "--jobs", "3"]) == 0
    for name in ("base", "ce", "ctc", "ctc-standard"):
        d = tmp_path / "assets" / name
        model, tok, facts = mv.load_checkpoint(d)
        assert model.dtype == torch.float32  # stored in bf16, computed in fp32 on a CPU
        card = (d / "README.md").read_text()
        assert "Exact-answer accuracy" in card and "| family | accuracy |" in card
        assert facts.defaults["gen_length"] == 8
        assert (facts.slack_id is not None) == name.startswith("ctc")
    assert mv.load_checkpoint(tmp_path / "assets" / "ctc-standard").facts.collapse == "standard"
    # ce descends from the released base (its bf16 export), which learned copy alone and then the mix;
    # each CTC model from a base of its own, the same two stages with its objective from the first
    # step. The cards show the whole lineage.
    chain = json.loads((tmp_path / "assets" / "ce" / "training.json").read_text())["lineage"]
    assert [m["stage"] for m in chain] == ["pretrain", "sft", "sft", "sft"]
    assert chain[1]["hyperparameters"]["generate"] == ["copy"] and chain[2]["base"] == str(tmp_path / "runs" / "base-copy" / "last")
    assert chain[-1]["base"] == str(tmp_path / "assets" / "base") and chain[-1]["objective"] == "ce"
    chain = json.loads((tmp_path / "assets" / "ctc" / "training.json").read_text())["lineage"]
    assert [m["stage"] for m in chain] == ["pretrain", "sft", "sft", "sft"]
    assert [m["objective"] for m in chain[1:]] == ["ctc", "ctc", "ctc"]
    assert chain[2]["base"] == str(tmp_path / "runs" / "base-ctc-copy" / "last")
    assert chain[-1]["base"] == str(tmp_path / "runs" / "base-ctc" / "last")
    # ctc-standard's base starts from the CE base's copy stage (Recipe.share_ce_copy): its chain waited for it.
    chain = json.loads((tmp_path / "assets" / "ctc-standard" / "training.json").read_text())["lineage"]
    assert [m["objective"] for m in chain[1:]] == ["ce", "ctc", "ctc"]
    assert chain[2]["base"] == str(tmp_path / "runs" / "base-copy" / "last")
    assert not (tmp_path / "runs" / "base-ctc-standard-copy").exists()
    acc = json.loads((tmp_path / "assets" / "eval" / "accuracy.json").read_text())
    assert set(acc["comparisons"]) == {"base - ce", "ctc - ce", "ctc-standard - ce"}
    assert acc["comparisons"]["ctc - ce"]["diff"] == pytest.approx(acc["ctc"]["accuracy"] - acc["ce"]["accuracy"],
                                                                   abs=1e-3)
    # The cards' sample command on an exported checkpoint, whose generation_config.json sets the steps
    # (that clash once crashed `train eval`), with the slack bias passed through to the sampler.
    ev = tmp_path / "eval_ctc.json"
    assert main(["eval", "--checkpoint", str(tmp_path / "assets" / "ctc"), "--data",
                 str(tmp_path / "runs" / "corpus" / "sft_heldout.jsonl"), "--limit", "4", "--slack-bias", "1",
                 "--out", str(ev)]) == 0
    sampler = json.loads(ev.read_text())["sampler"]
    assert sampler["steps"] == 8 and sampler["gen_length"] == 8 and sampler["slack_bias"] == 1
    res = json.loads((tmp_path / "assets" / "eval" / "robustness.json").read_text())
    assert set(res["models"]) == {"base", "ce", "ctc", "ctc-standard"}
    # A second run finds every stage complete and only re-exports and re-evaluates.
    assert main(["recipe", "embedded", "--quick", "--out", str(tmp_path / "runs"), "--assets",
                 str(tmp_path / "assets"), "--skip-robustness"]) == 0
    # --keep-base: the exported base is evaluated, not trained again (its weights stay as they are);
    # the copy stage ctc-standard's base starts from is trained by that chain when it is missing.
    before = (tmp_path / "assets" / "base" / "model.safetensors").read_bytes()
    shutil.rmtree(tmp_path / "runs" / "base")
    for stage in ("base-copy", "base-ctc-standard", "ctc-standard"):
        shutil.rmtree(tmp_path / "runs" / stage)
    assert main(["recipe", "embedded", "--quick", "--out", str(tmp_path / "runs"), "--assets",
                 str(tmp_path / "assets"), "--skip-robustness", "--keep-base"]) == 0
    assert not (tmp_path / "runs" / "base").exists()
    assert (tmp_path / "runs" / "base-copy" / "last" / "training.json").is_file()
    assert (tmp_path / "runs" / "ctc-standard" / "last" / "training.json").is_file()
    assert (tmp_path / "assets" / "base" / "model.safetensors").read_bytes() == before
    assert "base" in json.loads((tmp_path / "assets" / "eval" / "accuracy.json").read_text())


def test_recipe_branch_shares_the_ce_half(tmp_path, monkeypatch):
    """Recipe.branch (attempt 9): the CE base trains the focus half once, as OUT/base-half; the CE
    base and ctc's own base then train the mix from it, each with its own objective."""
    from dataclasses import replace

    import train.recipe as recipe
    from train.__main__ import main

    quick = recipe.QUICK
    monkeypatch.setattr(recipe, "QUICK", replace(quick, copy_first=None, share_ce_copy=(), own_base=("ctc",),
                                                 branch_at=1, branch=replace(quick.base, steps=2, lr=5e-4)))
    assert main(["recipe", "embedded", "--quick", "--out", str(tmp_path / "runs"), "--assets",
                 str(tmp_path / "assets"), "--jobs", "2", "--models", "ce", "ctc", "--skip-robustness"]) == 0
    half = json.loads((tmp_path / "runs" / "base-half" / "last" / "training.json").read_text())
    assert half["steps"] == 1 and half["hyperparameters"]["steps"] == 2  # stopped half-way through its schedule
    for name, objectives in (("ce", ["ce", "ce", "ce"]), ("ctc", ["ce", "ctc", "ctc"])):
        chain = json.loads((tmp_path / "assets" / name / "training.json").read_text())["lineage"]
        assert [m["stage"] for m in chain] == ["pretrain", "sft", "sft", "sft"]
        assert [m["objective"] for m in chain[1:]] == objectives
        assert chain[2]["base"] == str(tmp_path / "runs" / "base-half" / "last")
        assert chain[2]["hyperparameters"]["lr"] == 5e-4 and chain[2]["steps"] == 2
