"""How fast a small LLaDA learns to copy under the two SFT weightings: ELBO (1 / p_mask) vs flat.

Why it exists: the first embedded base model (LLaDA's ELBO-weighted SFT, 3,000 steps) never learned
to copy content from the prompt. This isolates the question on a synthetic task: prompt
`BOS noise* x1..xn SEP`, response `x1..xn EOS` padded with EOS (n in 3..8, 30 symbols, the noise
prefix of 1-4 tokens makes the copy offset vary), the embedded models' shape (d_model 192, 4 layers),
batch 32, AdamW 1e-3, clipping 1.0, the training code's `forward_mask` and losses. Accuracy is
exact match of greedy one-token-per-step decoding on 50 fresh prompts. One process per weighting,
run side by side; a fixed seed gives the same curve on the same machine.

    python bench/bench_sft_weighting.py [--steps 1800] [--d-model 192] [--layers 4]
"""

import argparse
import os
import random
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def train(weighting: str, steps: int, d: int, layers: int) -> None:
    import torch

    sys.path.insert(0, str(ROOT))
    from mdlm_viz.configuration_llada import LLaDAConfig
    from mdlm_viz.modeling_llada import LLaDAModelLM
    from train import objectives as obj

    torch.manual_seed(0)
    rng = random.Random(0)
    V, MASK, EOS, SEP, BOS, L = 40, 36, 37, 38, 39, 40
    cfg = LLaDAConfig(vocab_size=V, embedding_size=V, d_model=d, n_layers=layers, n_heads=d // 32,
                      n_kv_heads=d // 32, mlp_hidden_size=2 * d, max_sequence_length=64, mask_token_id=MASK,
                      eos_token_id=EOS, pad_token_id=EOS, bos_token_id=None, eot_token_id=None)
    model = LLaDAModelLM(cfg)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.0)

    def example():
        prefix = [BOS] + [30 + rng.randrange(5) for _ in range(rng.randint(1, 4))]
        items = [rng.randrange(30) for _ in range(rng.randint(3, 8))]
        return prefix + items + [SEP], items + [EOS]

    def batch(n):
        ids, plen = [], []
        for _ in range(n):
            p, r = example()
            ids.append(p + r + [EOS] * (L - len(p) - len(r)))
            plen.append(len(p))
        return torch.tensor(ids), torch.tensor(plen)

    @torch.no_grad()
    def accuracy(n=50):
        model.eval()
        right = 0
        for _ in range(n):
            p, r = example()
            x = torch.tensor([p + [MASK] * (L - len(p))])
            for _ in range(L - len(p)):  # greedy, the most confident masked position each step
                conf, tok = model(input_ids=x).logits[0].softmax(-1).max(-1)
                conf[x[0] != MASK] = -1
                i = int(conf.argmax())
                x[0, i] = tok[i]
            right += x[0, len(p):len(p) + len(r)].tolist() == r
        model.train()
        return right / n

    t0 = time.time()
    for step in range(1, steps + 1):
        ids, plen = batch(32)
        noised = obj.forward_mask(ids, mask_id=MASK, maskable=torch.arange(L)[None] >= plen[:, None])
        lp = obj.log_softmax32(model(input_ids=noised.noisy).logits)
        if weighting == "elbo":
            loss = obj.sft_loss(lp, ids, noised.masked, noised.p_mask, (L - plen).float())
        else:
            loss = obj.sft_loss_flat(lp, ids, noised.masked)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if step % (steps // 6) == 0:
            print(f"{weighting:5s} step {step:5d}  loss {loss.item():.3f}  exact copy {accuracy():.2f}  "
                  f"({time.time() - t0:.0f} s)", flush=True)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=1800)
    p.add_argument("--d-model", type=int, default=192)
    p.add_argument("--layers", type=int, default=4)
    p.add_argument("--only", choices=("elbo", "flat"), help=argparse.SUPPRESS)  # one worker process
    a = p.parse_args()
    if a.only:
        train(a.only, a.steps, a.d_model, a.layers)
        return 0
    env = {**os.environ, "OMP_NUM_THREADS": "1"}  # one core each, side by side
    procs = [subprocess.Popen([sys.executable, __file__, "--only", w, "--steps", str(a.steps), "--d-model",
                               str(a.d_model), "--layers", str(a.layers)], env=env)
             for w in ("elbo", "flat")]
    return max(proc.wait() for proc in procs)


if __name__ == "__main__":
    sys.exit(main())
