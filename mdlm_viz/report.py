"""Markdown tables of a robustness results dict (the JSON `python -m train robustness` writes):
one row per model, and each model against the reference paired on the same prompts."""

from __future__ import annotations


def markdown_table(results: dict) -> str:
    """Markdown table: win rate per strength, Pearson r with CI, clean accuracy, and at the top
    strength: accuracy, slack added per shift, shifts applied of those planned."""
    strengths = [r["strength"] for r in next(iter(results["models"].values()))["by_strength"]]
    head = ["model", *[f"win r={100 * s:g}%" for s in strengths], "Pearson r [95% CI]", "clean acc",
            f"acc r={100 * strengths[-1]:g}%", "slack/shift", "shifts applied"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, res in results["models"].items():
        rows = res["by_strength"]
        pr = res["pearson"]
        r = "n/a" if pr["r"] is None else f"{pr['r']:+.2f}" + (
            f" [{pr['ci'][0]:+.2f}, {pr['ci'][1]:+.2f}]" if pr.get("ci") else "")
        top = rows[-1]
        slack = top.get("slack_per_displacement")
        lines.append("| " + " | ".join([name, *[f"{row['win_rate']:.3f}" for row in rows], r,
                                         _f(res["clean"]["accuracy"]), _f(top["accuracy"]),
                                         "-" if slack is None else f"{slack:.2f}",
                                         f"{top['displacements']} of {top['displacements'] + top['unapplied']}"])
                     + " |")
    return "\n".join(lines)


def comparison_table(results: dict) -> str:
    """Markdown table of each model against the reference, paired on the same prompts: the
    differences (model - reference) of clean accuracy, win rate at the top strength and Pearson r."""
    ref, comps = results.get("reference"), results.get("comparisons") or {}
    if not ref or not comps:
        return ""
    top = max(float(s) for c in comps.values() for s in c["win_rate"])
    head = [f"model - {ref}", "clean accuracy", f"win rate r={100 * top:g}%", "Pearson r"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]

    def cell(d, fmt="+.3f"):
        if d is None or d.get("diff") is None:
            return "n/a"
        ci = f" [{d['ci'][0]:{fmt}}, {d['ci'][1]:{fmt}}]" if d.get("ci") else ""
        return f"{d['diff']:{fmt}}{ci}"

    for name, c in comps.items():
        acc = c["clean_accuracy"]
        acc_cell = cell(acc) + (f" (right only here: {acc['a_only']}, only in {ref}: {acc['b_only']})" if acc else "")
        lines.append(f"| {name} | {acc_cell} | {cell(c['win_rate'].get(f'{top:g}'))} | {cell(c['pearson'], '+.2f')} |")
    return "\n".join(lines)


def _f(v):
    return "-" if v is None else f"{v:.3f}"
