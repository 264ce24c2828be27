"""The embedded checkpoints in assets/: size budget, they load and decode, and the committed
evaluation results are reproducible from the committed weights."""

import json
from pathlib import Path

import pytest
import torch

import mdlm_viz as mv
from mdlm_viz import robustness as rb
from mdlm_viz.figures import robustness_figure

ASSETS = Path(__file__).resolve().parent.parent / "assets"
MODELS = ("base", "ce", "ctc", "ctc-standard")
MB = 1 << 20


def test_size_budget():
    files = [p for p in ASSETS.rglob("*") if p.is_file()]
    assert all(p.stat().st_size < 10 * MB for p in files), [p for p in files if p.stat().st_size >= 10 * MB]
    assert sum(p.stat().st_size for p in files) < 32 * MB


@pytest.fixture(scope="module")
def results():
    return json.loads((ASSETS / "eval" / "robustness.json").read_text())


@pytest.fixture(scope="module")
def prompts():
    lines = (ASSETS / "eval" / "prompts.jsonl").read_text().splitlines()
    return [rb.EvalPrompt(**json.loads(line)) for line in lines]


@pytest.mark.parametrize("name", MODELS)
def test_checkpoint_loads_with_its_facts(name):
    model, tok, facts = mv.load_checkpoint(ASSETS / name)
    assert model.dtype == torch.float32 and not model.training
    assert facts.objective == ("ce" if name in ("base", "ce") else "ctc")
    assert (facts.slack_id is not None) == name.startswith("ctc")
    if facts.slack_id is not None:
        assert facts.collapse == ("standard" if name == "ctc-standard" else "slack")
        assert tok.convert_ids_to_tokens(facts.slack_id) == "<slack>"
    card = (ASSETS / name / "README.md").read_text()
    assert "## Evaluation" in card and "## Training lineage" in card


@pytest.mark.parametrize("name", ("base", "ce", "ctc"))
def test_shipped_outputs_reproduce(name, results, prompts):
    """Re-decode the first prompts of the committed sweep (same batch as it was decoded in):
    the clean outputs must be the ones recorded in robustness.json."""
    model, tok, facts = mv.load_checkpoint(ASSETS / name)
    cfg = results["config"]
    sampler = dict(steps=cfg["steps"], gen_length=cfg["gen_length"], block_length=cfg["block_length"],
                   temperature=0.0, remasking="low_confidence", confidence_eos_eot_inf=cfg.get("eos_last", False))
    rows = prompts[:12]
    got = rb.decode_prompts(model, tok, facts, rows, sampler, shifts=False).text
    recorded = results["models"][name]["outputs"]["clean"][:12]
    same = sum(a == b for a, b in zip(got, recorded))
    assert same >= 11, list(zip(got, recorded))  # a different batch padding may flip one near-tie


def test_results_file_is_complete(results):
    assert results["format"] == rb.RESULTS_FORMAT and results["n_prompts"] >= 200
    assert set(results["models"]) == set(MODELS)
    strengths = [100 * s for s in results["config"]["strengths"]]
    assert strengths == pytest.approx([0, 0.5, 1, 2, 5, 10])
    for res in results["models"].values():
        assert res["by_strength"][0]["win_rate"] == 0.5  # r = 0: the clean output itself
        assert res["pearson"]["ci"] is not None
    fig = robustness_figure(results)
    assert len(fig.data) == len(MODELS)
    # every model against ce, paired on the same prompts, recomputable from the per-prompt values
    assert results["reference"] == "ce" and set(results["comparisons"]) == set(MODELS) - {"ce"}
    ctc, ce = (results["models"][m]["per_prompt"]["clean_correct"] for m in ("ctc", "ce"))
    rows = [i for i, v in enumerate(ce) if v is not None]
    assert len(ce) == results["n_prompts"] and len(rows) == results["comparisons"]["ctc"]["clean_accuracy"]["n"]
    assert results["comparisons"]["ctc"]["clean_accuracy"]["diff"] == pytest.approx(
        sum(ctc[i] - ce[i] for i in rows) / len(rows))


def test_accuracy_file_matches_the_cards():
    acc = json.loads((ASSETS / "eval" / "accuracy.json").read_text())
    assert set(acc["comparisons"]) == {f"{m} - ce" for m in MODELS if m != "ce"}
    for name in MODELS:
        assert acc[name]["n"] >= 550  # every held-out prompt with an exact answer (590 in the recipe's corpus)
        card = (ASSETS / name / "README.md").read_text()
        assert f"on {acc[name]['n']} held-out prompts" in card and f"**{acc[name]['accuracy']:.3f}**" in card



def _demo_recipe_assets() -> bool:
    """Whether assets/ holds checkpoints of the demo-grade recipe (its 24-token canvas, #13)."""
    from train.recipe import CANVAS

    return json.loads((ASSETS / "ce" / "generation_config.json").read_text()).get("gen_length") == CANVAS


@pytest.mark.skipif(not _demo_recipe_assets(), reason="the shipped checkpoints predate the demo-grade recipe (#13)")
def test_every_preset_is_demoable_with_the_shipped_checkpoints():
    """What the app promises: on each preset, one click on "Find a revealing shift" finds a shift
    that breaks CE's answer while CTC's stays right (both clean answers being right)."""
    from ui.finder import reveal_prompt, shipped_settings
    from ui.models import load_models
    from ui.settings import PRESET_ANSWERS

    models = load_models({n: str(ASSETS / n) for n in ("ce", "ctc")})
    settings = shipped_settings(models)
    missed = {}
    for prompt in PRESET_ANSWERS:
        _, found = reveal_prompt(models, prompt, settings, PRESET_ANSWERS)
        if not found.revealing:
            missed[prompt] = found.message
    assert not missed, missed
