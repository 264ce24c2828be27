"""The Robustness tab: the evaluation's figure and tables from assets/eval/robustness.json,
drawn, never recomputed."""

from __future__ import annotations

import json


from mdlm_viz import figures
from mdlm_viz.report import comparison_table, markdown_table

from .. import components as ui_components
from ..models import ROOT

ROBUSTNESS_JSON = ROOT / "assets" / "eval" / "robustness.json"


def robustness_view(path=ROBUSTNESS_JSON):
    """(figure or None, Markdown) of a `python -m train robustness` results file."""
    if not path.is_file():
        shown = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
        return None, f"Evaluation results not found (`{shown}`)."
    try:
        results = json.loads(path.read_text())
        about = (f"Win rate of each model's shifted output against its own clean output, {results['n_prompts']} "
                 "held-out prompts (`assets/eval/robustness.json`; how it was measured: README, *The evaluation*). "
                 "The last column counts the shifts that found a token to move at the top strength.\n\n")
        paired = comparison_table(results)
        if paired:
            paired = (f"\n\nEach model against `{results['reference']}` on the same prompts (difference, 95% "
                      "bootstrap CI over prompts; a positive Pearson difference means the win rate falls off "
                      "less):\n\n" + paired)
        return figures.robustness_figure(results), about + markdown_table(results) + paired
    except (ValueError, KeyError, TypeError) as err:
        return None, f"Evaluation results could not be read: {err}"


def layout() -> None:
    fig, message = robustness_view()
    ui_components.Plot(fig, label="robustness", visible=fig is not None, elem_id="robustness-plot")
    ui_components.Markdown(message, elem_id="robustness-table")
