"""Test oracle: LLaDA's official sampler ``generate()``, step for step.

Re-derived from the newest ``generate.py`` of ML-GSAI/LLaDA (the version
whose signature is ``generate(model, prompt, attention_mask=None, steps=128,
gen_length=128, block_length=128, temperature=0., cfg_scale=0.,
remasking='low_confidence', mask_id=126336, logits_eos_inf=False,
confidence_eos_eot_inf=False)``), for cross-checking the project's own
sampler.  ``model_fn(x, attention_mask) -> logits [B, L, V]`` replaces
``model(x, attention_mask=...).logits``.

Procedure per call (reference function names in brackets):

1. Canvas ``x = [prompt | mask_id * gen_length]``; a given [B, Lp]
   attention_mask is extended with ``gen_length`` ones (same dtype).
   ``prompt_index = (x != mask_id)`` is fixed once, before any step.
2. ``num_blocks = gen_length // block_length`` (asserted exact);
   ``steps_per_block = steps // num_blocks`` (asserted exact).
3. For each block, once at block start [get_num_transfer_tokens]: per row,
   ``n = #masked positions in the block``; step i commits
   ``n // steps_per_block + (1 if i < n % steps_per_block else 0)`` tokens
   (the remainder goes to the *first* steps).
4. Each step:
   * ``mask_index = (x == mask_id)`` over the whole row.
   * logits = model_fn(x, attention_mask).  With ``cfg_scale > 0``: one
     batched call on ``cat([x, un_x])`` where ``un_x`` is x with every
     ``prompt_index`` position set to mask_id, mask ``cat([am, am])``;
     ``logits = un + (cfg_scale + 1) * (cond - un)``.
   * ``logits_eos_inf``: ``logits[:, :, eos_id] = -inf`` (in place, before
     sampling).
   * [add_gumbel_noise]: temperature == 0 returns the *same tensor* (no RNG
     draw).  Otherwise ONE draw ``torch.rand_like(logits.to(float64))``
     (shape [B, L, V], float64, on the logits' device; B is the un-doubled
     batch, after CFG) and ``exp(logits64) / (-log(u)) ** temperature``.
   * ``x0 = argmax(logits_with_noise, -1)`` (first index on ties).
   * ``confidence_eos_eot_inf`` (defect, see below).
   * Confidence: 'low_confidence' -> ``softmax(logits, -1)`` **in the
     logits' own dtype** (bfloat16 for the bf16 model; the float64 cast of
     older versions is gone) gathered at x0; 'random' -> ONE draw
     ``torch.rand((B, L), device=x0.device)`` (float32), made after the Gumbel
     draw.
   * ``x0_p[:, Lp + (b + 1) * block_length:] = -inf`` (positions after the
     current block); ``x0 = where(mask_index, x0, x)``;
     ``confidence = where(mask_index, x0_p, -inf)``.
   * Per row j: ``topk(confidence[j], k=n_j,i)`` -> those positions get x0
     (tie order is torch.topk's, device dependent).

Known defects, reproduced on purpose:

* **EOS/EoT confidence suppression** (``confidence_eos_eot_inf``) is the
  line ``logits_with_noise[:, :, 126081] = logits[:, :, 126348] = -inf``
  placed *after* the argmax.  Python assigns the leftmost target first.  It
  therefore never changes which token x0 is; it only edits the tensors the
  confidence is computed from, and it sets *logits* (so the confidence of an
  affected x0 becomes softmax(-inf) = 0, not -inf: such positions still win
  topk slots whenever fewer than k positions have positive confidence, and
  all other tokens' probabilities are renormalised upwards).
    - temperature == 0: logits_with_noise *is* logits, so both the EOS and
      EoT columns of logits become -inf: x0 == EOS or EoT gets confidence 0.
    - temperature > 0: logits_with_noise is a separate float64 tensor, so the
      EOS assignment is dead; only EoT's column of logits is -inf.  EOS
      predictions keep a normal (slightly renormalised) confidence; only EoT
      predictions get 0.
  The ids are hard-coded in the reference (126081, 126348); here they are the
  ``eos_id`` / ``eot_id`` arguments with those defaults.  With
  ``logits_eos_inf`` as well, logits[EOS] is already -inf.
* ``cfg_scale > 0`` with ``attention_mask=None`` raises NameError in the
  reference (``attention_mask_`` unbound).  NOT reproduced: the oracle passes
  ``None`` to model_fn for the doubled batch.
* Mask tokens inside the prompt count in ``mask_index`` (they are never -inf'd,
  so they compete for the per-step budget of every block, and the block's own
  positions may then stay masked).  Reproduced as is.
* topk may select -inf positions (future-block or already-decoded ones) if
  k exceeds the number of finite candidates; cannot happen for ordinary
  prompts, reproduced as is.

``record``: if a list, one dict per step is appended:
``{"block": b, "step": i, "committed": sorted [(batch, position, token)]}``
with absolute positions in x (prompt included), listing every position
selected by topk (normally exactly the newly decoded ones).

The oracle clones the model output before the in-place edits (numerically
identical; keeps a caller's cached tensors intact) and keeps the
temperature-0 aliasing between logits and logits_with_noise.
"""

from __future__ import annotations

from typing import Callable, Optional

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["reference_generate", "num_transfer_tokens", "add_gumbel_noise"]


def add_gumbel_noise(logits: Tensor, temperature: float) -> Tensor:
    """[add_gumbel_noise]: identity object at T == 0, else float64 Gumbel-max keys."""
    if temperature == 0:
        return logits
    logits64 = logits.to(torch.float64)
    u = torch.rand_like(logits64, dtype=torch.float64)
    return logits64.exp() / ((-torch.log(u)) ** temperature)


def num_transfer_tokens(block_mask_index: Tensor, steps: int) -> Tensor:
    """[get_num_transfer_tokens]: int64 [B, steps]; remainder on the first steps."""
    total = block_mask_index.sum(dim=1, keepdim=True)
    base = total // steps
    extra = total % steps
    counts = torch.zeros(total.size(0), steps, dtype=torch.int64, device=block_mask_index.device) + base
    for row in range(total.size(0)):
        counts[row, : int(extra[row])] += 1
    return counts


@torch.no_grad()
def reference_generate(
    model_fn: Callable[[Tensor, Optional[Tensor]], Tensor],
    prompt: Tensor,
    attention_mask: Optional[Tensor] = None,
    steps: int = 128,
    gen_length: int = 128,
    block_length: int = 128,
    temperature: float = 0.0,
    cfg_scale: float = 0.0,
    remasking: str = "low_confidence",
    mask_id: int = 126336,
    logits_eos_inf: bool = False,
    confidence_eos_eot_inf: bool = False,
    eos_id: int = 126081,
    eot_id: int = 126348,
    record: Optional[list] = None,
) -> Tensor:
    """Returns the final canvas [B, Lp + gen_length] (prompt included)."""
    device = prompt.device
    batch, prompt_len = prompt.shape
    x = torch.full((batch, prompt_len + gen_length), mask_id, dtype=torch.long, device=device)
    x[:, :prompt_len] = prompt.clone()

    if attention_mask is not None:
        ones = torch.ones((batch, gen_length), dtype=attention_mask.dtype, device=device)
        attention_mask = torch.cat([attention_mask.to(device), ones], dim=-1)

    prompt_index = x != mask_id

    assert gen_length % block_length == 0
    num_blocks = gen_length // block_length
    assert steps % num_blocks == 0
    steps_per_block = steps // num_blocks

    for b in range(num_blocks):
        start = prompt_len + b * block_length
        end = prompt_len + (b + 1) * block_length
        schedule = num_transfer_tokens(x[:, start:end] == mask_id, steps_per_block)
        for i in range(steps_per_block):
            mask_index = x == mask_id

            if cfg_scale > 0.0:
                un_x = x.clone()
                un_x[prompt_index] = mask_id
                both = torch.cat([x, un_x], dim=0)
                both_mask = None if attention_mask is None else torch.cat([attention_mask, attention_mask], dim=0)
                out = model_fn(both, both_mask)
                cond, uncond = torch.chunk(out, 2, dim=0)
                logits = uncond + (cfg_scale + 1) * (cond - uncond)
            else:
                logits = model_fn(x, attention_mask).clone()

            if logits_eos_inf:
                logits[:, :, eos_id] = -torch.inf

            noisy = add_gumbel_noise(logits, temperature)
            x0 = torch.argmax(noisy, dim=-1)

            if confidence_eos_eot_inf:
                # reference: noisy[..., EOS] = logits[..., EOT] = -inf
                # (left target first; at T == 0 `noisy is logits`)
                noisy[:, :, eos_id] = -torch.inf
                logits[:, :, eot_id] = -torch.inf

            if remasking == "low_confidence":
                probs = F.softmax(logits, dim=-1)
                x0_p = torch.gather(probs, dim=-1, index=x0.unsqueeze(-1)).squeeze(-1)
            elif remasking == "random":
                x0_p = torch.rand((x0.shape[0], x0.shape[1]), device=x0.device)
            else:
                raise NotImplementedError(remasking)

            x0_p[:, end:] = -torch.inf
            x0 = torch.where(mask_index, x0, x)
            confidence = torch.where(mask_index, x0_p, -torch.inf)

            transfer = torch.zeros_like(x0, dtype=torch.bool)
            for j in range(confidence.shape[0]):
                _, picked = torch.topk(confidence[j], k=int(schedule[j, i]))
                transfer[j, picked] = True
            x[transfer] = x0[transfer]

            if record is not None:
                rows, cols = transfer.nonzero(as_tuple=True)
                committed = sorted(
                    (int(r), int(c), int(x[r, c])) for r, c in zip(rows.tolist(), cols.tolist())
                )
                record.append({"block": b, "step": i, "committed": committed})

    return x
