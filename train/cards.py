"""Model cards (a checkpoint's README.md), written from what was recorded, never typed by hand.

    training_card   every checkpoint a training run saves (OUT/last, OUT/best): its own training.json
    export_card     an embedded checkpoint the recipe exports to assets/: its whole lineage, the
                    corpus it learned from, and the evaluation of the exported weights themselves
"""

from __future__ import annotations

import json

# The command that recomputes an export card's accuracy with the same sampler settings.
SAMPLE_COMMAND = "python -m train eval --checkpoint {path} --data {data} --limit {limit} --batch-size 100 --seed 0"

DESCRIPTIONS = {
    "base": "the instruction-tuned base (the stand-in for LLaDA-8B-Instruct): pre-trained, then SFT with CE",
    "ce": "base fine-tuned further with position-wise cross-entropy only (the paper's CE baseline)",
    "ctc": "base fine-tuned with CE + 0.1 * CTC and `<slack>`, slack-only collapse (the paper's v2 method)",
    "ctc-standard": "base fine-tuned with CE + 0.1 * CTC and `<slack>`, standard collapse that also merges "
                    "repeated tokens (the paper's v1; shows the number-collapse failure)",
}


def _front_matter(ctc: bool) -> list[str]:
    """The Hugging Face hub's metadata block."""
    tags = ["llada", "masked-diffusion", "mdlm-viz"] + (["ctc", "slack"] if ctc else [])
    return ["---", "library_name: transformers", "pipeline_tag: fill-mask", f"tags: [{', '.join(tags)}]", "---"]


def training_card(meta: dict) -> str:
    """The card of a checkpoint saved by `python -m train pretrain/sft`, from its training.json."""
    objective = meta.get("objective", meta.get("stage"))
    lines = _front_matter(objective == "ctc") + [
        "", f"# mdlm-viz {meta.get('stage')} checkpoint ({objective}, {meta.get('checkpoint')})", "",
        "A LLaDA-architecture masked diffusion language model trained with mdlm-viz's "
        "`python -m train`. Load it with `mdlm_viz.load_checkpoint(path)`.", "",
        "## Training", "",
        f"- stage: {meta.get('stage')}; objective: {objective}",
        f"- steps: {meta.get('steps')}; wall time: {meta.get('wall_time_s')} s",
        f"- data: {', '.join(map(str, meta.get('data', [])))}"]
    for key in ("base", "examples", "skipped_too_long", "chunks", "seq_len", "params", "lam", "s_max", "collapse",
                "emission", "best_step", "best_eval_loss"):
        if meta.get(key) is not None:
            lines.append(f"- {key}: {meta[key]}")
    lines += ["", "## Hyper-parameters", "", "| name | value |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in sorted(meta.get("hyperparameters", {}).items())]
    lines += ["", "## Final metrics", ""]
    for h in meta.get("last_logs", []) + meta.get("eval_logs", [])[-1:]:
        lines.append("- " + ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in h.items()))
    return "\n".join(lines) + "\n"


def export_card(name: str, chain: list[dict], metrics: dict, *, sampler: dict, accuracy_limit: int,
                manifest: dict, has_slack: bool) -> str:
    """The card of the embedded checkpoint `assets/NAME`.

    chain: the training.json of every stage it descends from, oldest first (recipe.lineage);
    metrics: recipe.evaluate_checkpoint of the exported weights; manifest: the corpus's
    manifest.json ({} when there is none); sampler: the decoding settings the metrics used."""
    path = f"assets/{name}"
    sources = ", ".join(f"{k} ({', '.join(f'{p} {v}' for p, v in s.get('packages', {}).items())})"
                        for k, s in manifest.get("sources", {}).items() if s.get("found")) or "no packaged text"
    lines = _front_matter(has_slack) + [
        "", f"# mdlm-viz embedded checkpoint: `{name}`", "", f"{DESCRIPTIONS.get(name, name)}.", "",
        "A small LLaDA-architecture masked diffusion LM trained on a 2-core CPU by "
        "`python -m train recipe embedded`. Load it with `mdlm_viz.load_checkpoint(\"" + path + "\")`; "
        "weights are stored in bfloat16.", "",
        "## Data", "",
        f"- corpus built by `python -m train corpus` (packaged text: {sources}) with the task generator: "
        "copy, reverse, sort, count, arithmetic, spell (exact answers) and two-sentence stories from a "
        "small grammar; pre-training reads its rendered training tasks, and every SFT stage draws a fresh "
        "generated example per sequence (`python -m train sft --generate`), never one whose task key is "
        "held out.",
        f"- corpus parameters: `{json.dumps(manifest.get('params', {}))}`", "",
        "## Training lineage", "", "| stage | objective | steps | wall time (s) | examples/chunks | "
        "lambda | s_max | collapse | best held-out loss |", "|---|---|---|---|---|---|---|---|---|"]
    for m in chain:
        label = m.get("stage") if m.get("stage") == "pretrain" else "sft"
        ctc = m.get("objective") == "ctc"
        lines.append(f"| {label} | {m.get('objective')} | {m.get('steps')} | {m.get('wall_time_s')} | "
                     f"{m.get('examples') or m.get('chunks')} | {m.get('lam') if ctc else '-'} | "
                     f"{m.get('s_max') if ctc else '-'} | {m.get('collapse') if ctc else '-'} | "
                     f"{_fmt(min((h['eval_loss'] for h in m.get('eval_logs', [])), default=None))} |")
    hp = chain[0].get("hyperparameters", {})
    lines += ["", f"Model: d_model {hp.get('d_model')}, {hp.get('layers')} layers, {hp.get('heads')} heads, "
              f"MLP {hp.get('mlp')}, {chain[0].get('params')} parameters, context {hp.get('seq_len')} in pre-training.",
              "", "Hyper-parameters of the last stage:", "", "| name | value |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in sorted(chain[-1].get("hyperparameters", {}).items()) if k != "run"]
    lines += ["", "## Evaluation", "",
              f"Held-out SFT cross-entropy (original responses, fixed masks): **{metrics['heldout_ce']}**.", "",
              f"Exact-answer accuracy on {metrics['n']} held-out prompts (their task keys are never drawn in "
              f"training), greedy decoding with `{json.dumps(sampler)}`: **{metrics['accuracy']:.3f}**", "",
              "| family | accuracy |", "|---|---|"]
    lines += [f"| {f} | {a:.3f} |" for f, a in metrics["per_family"].items()]
    if metrics.get("story_fluency") is not None:
        lines += ["", f"Stories: {100 * metrics['story_fluency']:.1f}% of the answers to {metrics['story_prompts']} "
                  "held-out story prompts are sentences the story grammar (`train/corpus/stories.py`) accepts, "
                  "about the prompt's character."]
    cmd = SAMPLE_COMMAND.format(path=path, data="runs/embedded/corpus/sft_heldout.jsonl", limit=accuracy_limit)
    lines += ["", f"Produced by `python -m train recipe embedded`; to recompute the accuracy with the same sampler "
              f"settings: `{cmd}`.", "", "### Samples", "", "| prompt | reference | output |", "|---|---|---|"]
    for s in metrics.get("samples", [])[:6] + metrics.get("open_samples", []):
        lines.append(f"| {_cell(s['prompt'])} | {_cell(s.get('answer', s.get('reference', '')))} | {_cell(s['output'])} |")
    lines += ["", "## Limits", "",
              "A few million parameters trained on generated tasks: it knows the task families above and the "
              "story grammar's words, nothing else. It exists to make diffusion decoding, `<slack>` and the "
              "CE/CTC difference visible in the app, not to be used for anything else.", ""]
    weak = ", ".join(f"{f} ({100 * a:.0f}%)" for f, a in metrics["per_family"].items() if a < 0.9)
    if weak:
        lines += [f"Families below 90% exact: {weak}.", ""]
    return "\n".join(lines)


def _fmt(v):
    return f"{v:.4f}" if isinstance(v, float) else "-" if v is None else str(v)


def _cell(s: str) -> str:
    return str(s).replace("|", "\\|").replace("\n", " ")[:160]
