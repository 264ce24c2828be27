"""CE vs CE + lambda * CTC on a task small models can learn: clean accuracy and shift robustness by model size.

Why it exists: the embedded CTC checkpoint is about 3 points behind CE in clean accuracy, and the
embedded models are weak (about 20% exact). This asks whether that cost is a matter of capacity,
away from the corpus: a synthetic copy task (prompt `BOS noise* x1..xn SEP`, response `x1..xn EOS`,
n in 3..8 over 10 symbols, so repeated neighbours are common, like digits), trained from scratch
with the training code's collator (slack insertion), forward process and loss (`objective_loss`),
then decoded with `mdlm_viz.generate`, clean and with `RandomShifts` at several strengths (the
sweep's intervention), on the same fresh prompts for every run. One process per (size, objective),
side by side; fixed seeds give the same numbers on the same machine.

    python bench/bench_ctc_capacity.py [--steps 1500] [--sizes 64x2 192x4] [--lam 0.1] [--s-max 0.5]

Prints, per size, clean exact-copy accuracy of ce and ctc with the paired difference (95% bootstrap
CI over prompts), and each model's accuracy under shifts with the paired change from its own clean
accuracy.
"""

import argparse
import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NOISE, GEN = 5, 16
ITEMS = MASK = EOS = SEP = BOS = SLACK = VOCAB = SPACE = 0  # set by use_symbols
FRAME: list[int] = []
SPACED = False
MIN_ITEMS, MAX_ITEMS = 3, 8


def use_symbols(n: int, spaced: bool = False, frame: int = 0) -> None:
    """n copyable symbols, then the noise symbols and the special ids. --symbols: how much harder
    copying gets as the number of distinct tokens grows; --spaced puts a separator token between
    items (as the corpus's `1 2 3` has a space token between digits); --frame N adds N fixed
    tokens between the prompt and the answer (as a chat template's headers do)."""
    global ITEMS, MASK, EOS, SEP, BOS, SLACK, VOCAB, SPACE, FRAME, SPACED
    ITEMS, SPACED = n, spaced
    MASK, EOS, SEP, BOS, SLACK = (n + NOISE + i for i in range(5))
    SPACE = n + NOISE + 5  # used only when spaced: the defaults keep the original vocabulary
    FRAME = [n + NOISE + 5 + spaced + i for i in range(frame)]
    VOCAB = n + NOISE + 5 + spaced + frame


use_symbols(10)
STRENGTHS = (0.05, 0.1, 0.2)


def example(rng: random.Random) -> tuple[list[int], list[int]]:
    prefix = [BOS] + [ITEMS + rng.randrange(NOISE) for _ in range(rng.randint(1, 4))]
    items = [rng.randrange(ITEMS) for _ in range(rng.randint(MIN_ITEMS, MAX_ITEMS))]
    if SPACED:
        items = [t for x in items for t in (x, SPACE)][:-1]
    return prefix + items + [SEP] + FRAME, items + [EOS]


def worker(objective: str, d: int, layers: int, steps: int, lam: float, s_max: float, prompts: int) -> dict:
    import torch

    sys.path.insert(0, str(ROOT))
    from mdlm_viz import generate
    from mdlm_viz.configuration_llada import LLaDAConfig
    from mdlm_viz.interventions import RandomShifts
    from mdlm_viz.modeling_llada import LLaDAModelLM
    from train import objectives as obj
    from train.data import SFTCollator, SFTExample
    from train.objectives import Objective, objective_loss

    torch.manual_seed(0)
    ctc = objective == "ctc"
    cfg = LLaDAConfig(vocab_size=VOCAB, embedding_size=VOCAB, d_model=d, n_layers=layers, n_heads=max(1, d // 32),
                      n_kv_heads=max(1, d // 32), mlp_hidden_size=2 * d, max_sequence_length=128, mask_token_id=MASK,
                      eos_token_id=EOS, pad_token_id=EOS, bos_token_id=None, eot_token_id=None,
                      slack_token_id=SLACK)
    model = LLaDAModelLM(cfg)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.0)
    o = Objective(stage="sft", mask_id=MASK, kind=objective, slack_id=SLACK, lam=lam, weighting="flat")
    collate = SFTCollator(EOS, SLACK if ctc else None, s_max=s_max, collapse="slack", seed=0)
    rng, noise = random.Random(0), torch.Generator().manual_seed(0)  # same data and masks for ce and ctc
    t0 = time.time()
    for _ in range(steps):
        batch = collate([SFTExample(*example(rng)) for _ in range(32)])
        ids = batch["input_ids"]
        maskable = torch.arange(ids.shape[1])[None, :] >= batch["prompt_lengths"][:, None]
        noised = obj.forward_mask(ids, mask_id=MASK, maskable=maskable, generator=noise)
        loss, _ = objective_loss(o, obj.log_softmax32(model(input_ids=noised.noisy).logits), ids, noised, batch)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
    train_s = time.time() - t0

    model.eval()
    test = [example(random.Random(10_000 + i)) for i in range(prompts)]  # the same prompts for every run
    Lp = max(len(p) for p, _ in test)
    ids = torch.tensor([[EOS] * (Lp - len(p)) + p for p, _ in test])
    attn = torch.tensor([[0] * (Lp - len(p)) + [1] * len(p) for p, _ in test])
    kw = dict(steps=GEN, gen_length=GEN, block_length=GEN, mask_id=MASK, eos_id=EOS, eot_id=None,
              slack_id=SLACK if ctc else None, attention_mask=attn)
    if ctc:
        kw["collapse"] = "slack"

    def correct(interventions) -> list[float]:
        with torch.no_grad():
            out = generate(model, ids, interventions=interventions, **kw)
        return [float(out.response_ids(i) == r[:-1]) for i, (_, r) in enumerate(test)]

    result = {"objective": objective, "d": d, "layers": layers, "params": sum(p.numel() for p in model.parameters()),
              "train_s": round(train_s, 1), "clean": correct([])}
    for r in STRENGTHS:  # two shift seeds per strength, pooled per prompt
        a, b = correct([RandomShifts(r, seed=0)]), correct([RandomShifts(r, seed=1)])
        result[f"r={r}"] = [(x + y) / 2 for x, y in zip(a, b)]
    return result


def report(results: list[dict]) -> None:
    sys.path.insert(0, str(ROOT))
    from mdlm_viz.stats import paired_difference

    def pct(d):
        return f"{100 * d['diff']:+.1f} [{100 * d['ci'][0]:+.1f}, {100 * d['ci'][1]:+.1f}]"

    by = {(r["d"], r["layers"], r["objective"]): r for r in results}
    mean = lambda xs: 100 * sum(xs) / len(xs)  # noqa: E731
    for d, layers in sorted({(r["d"], r["layers"]) for r in results}):
        ce, ctc = by.get((d, layers, "ce")), by.get((d, layers, "ctc"))
        if ce is None or ctc is None:  # one objective only (--objectives): its own figures
            r = ce or ctc
            shifted = "  ".join(f"r={100 * s:g}%: {mean(r[f'r={s}']):.1f}%" for s in STRENGTHS)
            print(f"\nd_model {d}, {layers} layers ({r['params']:,} params; training {r['train_s']:.0f} s): "
                  f"{r['objective']} clean exact copy {mean(r['clean']):.1f}%  {shifted}")
            continue
        print(f"\nd_model {d}, {layers} layers ({ce['params']:,} params; training {ce['train_s']:.0f} s ce, "
              f"{ctc['train_s']:.0f} s ctc)")
        print(f"  clean exact copy: ce {mean(ce['clean']):.1f}%  ctc {mean(ctc['clean']):.1f}%  "
              f"ctc - ce {pct(paired_difference(ctc['clean'], ce['clean']))} points")
        for r in STRENGTHS:
            key = f"r={r}"
            drops = {m["objective"]: paired_difference(m[key], m["clean"]) for m in (ce, ctc)}
            print(f"  shifts r={100 * r:g}%: ce {mean(ce[key]):.1f}% (vs clean {pct(drops['ce'])})  "
                  f"ctc {mean(ctc[key]):.1f}% (vs clean {pct(drops['ctc'])})  "
                  f"ctc - ce {pct(paired_difference(ctc[key], ce[key]))}")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=1500)
    p.add_argument("--sizes", nargs="+", default=["64x2", "192x4"], help="d_model x layers, e.g. 192x4")
    p.add_argument("--lam", type=float, default=0.1)
    p.add_argument("--s-max", type=float, default=0.5)
    p.add_argument("--prompts", type=int, default=300)
    p.add_argument("--symbols", type=int, default=10, help="distinct symbols to copy (default 10, like digits)")
    p.add_argument("--spaced", action="store_true", help="a separator token between items, prompt and answer")
    p.add_argument("--frame", type=int, default=0, help="fixed tokens between the prompt and the answer")
    p.add_argument("--items", nargs=2, type=int, default=[3, 8], metavar=("MIN", "MAX"),
                   help="answer length range in items (default 3 8; the demo wants up to 20)")
    p.add_argument("--objectives", nargs="+", default=["ce", "ctc"], choices=["ce", "ctc"])
    p.add_argument("--worker", nargs=3, help=argparse.SUPPRESS)  # objective d layers: one run, JSON to stdout
    a = p.parse_args()
    if a.symbols < 2:
        p.error("--symbols must be at least 2")
    if not 1 <= a.items[0] <= a.items[1] <= 24:
        p.error("--items takes MIN MAX with 1 <= MIN <= MAX <= 24")
    global MIN_ITEMS, MAX_ITEMS, GEN
    MIN_ITEMS, MAX_ITEMS = a.items
    GEN = max(GEN, MAX_ITEMS * (2 if a.spaced else 1) + 4)  # room for the answer and EOS
    use_symbols(a.symbols, a.spaced, a.frame)
    if a.worker:
        objective, d, layers = a.worker[0], int(a.worker[1]), int(a.worker[2])
        print(json.dumps(worker(objective, d, layers, a.steps, a.lam, a.s_max, a.prompts)))
        return 0
    try:
        sizes = [tuple(int(v) for v in s.split("x")) for s in a.sizes]
    except ValueError:
        p.error(f"--sizes takes d_model x layers like 192x4, got {a.sizes}")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}  # one core each, side by side
    common = ["--steps", str(a.steps), "--lam", str(a.lam), "--s-max", str(a.s_max), "--prompts", str(a.prompts),
              "--symbols", str(a.symbols), "--frame", str(a.frame), "--items", *map(str, a.items), *(["--spaced"] if a.spaced else [])]
    procs = [subprocess.Popen([sys.executable, __file__, "--worker", objective, str(d), str(layers), *common],
                              env=env, stdout=subprocess.PIPE, text=True)
             for d, layers in sizes for objective in a.objectives]
    outputs = [proc.communicate()[0] for proc in procs]
    if any(proc.returncode for proc in procs):
        return 1
    print(f"{a.steps} steps, {a.symbols} symbols, items {a.items[0]}-{a.items[1]}{', spaced' if a.spaced else ''}, frame {a.frame}, lambda {a.lam}, s_max {a.s_max}, {a.prompts} prompts, "
          "shifts: 2 seeds per strength")
    report([json.loads(out.strip().splitlines()[-1]) for out in outputs])
    return 0


if __name__ == "__main__":
    sys.exit(main())
