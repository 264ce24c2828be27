"""Candidate preset prompts for the app: held-out prompts on which "Find a revealing shift" works.

Reads a demo check's per-prompt results (`python -m train demo-check`, or the recipe's
ASSETS/eval/demo.json), keeps the prompts both models answered right, runs the app's own finder
(`ui.finder.reveal_prompt`, the shipped decode settings) on each, and prints the revealing ones by
family with CE's damage (word edit distance), longest cascade first. The presets in
`ui/settings.py` are picked from this list by hand (a mix of families, short enough to read);
`tests/test_assets.py` then checks each is demo-able with the shipped checkpoints.

    python scripts/pick_presets.py --assets assets [--per-family 3]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--assets", default="assets", help="a folder with ce/, ctc/ and eval/demo.json")
    ap.add_argument("--per-family", type=int, default=3, help="revealing prompts printed per family")
    args = ap.parse_args(argv)
    assets = Path(args.assets)
    demo = assets / "eval" / "demo.json"
    if not demo.is_file():
        ap.error(f"{demo} not found: run the recipe (or python -m train demo-check) first")

    from mdlm_viz.stats import edit_distance
    from ui.finder import reveal_prompt, shipped_settings
    from ui.models import load_models

    models = load_models({n: str(assets / n) for n in ("ce", "ctc")})
    settings = shipped_settings(models)
    rows = json.loads(demo.read_text())["prompts"]
    both_right = [r for r in rows if all(r["clean"][m]["text"] == r["answer"] for m in ("ce", "ctc"))]
    found: dict[str, list] = {}
    for r in both_right:
        _, result = reveal_prompt(models, r["prompt"], settings, {r["prompt"]: r["answer"]})
        if result.revealing:
            broken = [s["ce"]["text"] for s in r["shifts"] if s["ce"]["text"] != r["answer"]]
            damage = max((edit_distance(b.split(), r["answer"].split()) for b in broken), default=0)
            found.setdefault(r["family"], []).append((damage, r["prompt"], r["answer"]))
    print(f"{len(both_right)} prompts both right; revealing: "
          + ", ".join(f"{fam} {len(v)}" for fam, v in sorted(found.items())))
    for fam, items in sorted(found.items()):
        for damage, prompt, answer in sorted(items, reverse=True)[:args.per_family]:
            print(f'    ({json.dumps(prompt)}, {json.dumps(answer)}),  # {fam}, CE damage {damage} words')
    return 0


if __name__ == "__main__":
    sys.exit(main())
