"""The masked-diffusion sampler: LLaDA's reference semantics, recording every step.

Decoding starts from the prompt followed by `gen_length` mask tokens. The response is split into
blocks decoded left to right; each block gets `steps / num_blocks` steps, and at each step one
forward pass predicts every masked position, and the most confident predictions inside the current
block are committed (never to change again). Given the same model, inputs, settings and torch seed
this commits the same tokens at every step as LLaDA's `generate.py`, with two of its defects fixed
(see `confidence_eos_eot_inf` and CFG below).

Beyond the reference: margin and entropy confidences, `<slack>`-aware decoding for CTC-trained
checkpoints, positional-shift interventions, batched left-padded prompts, and a `Trace` of every
step that can be streamed to a caller while decoding runs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Iterator, Sequence

import torch
import torch.nn.functional as F

from .ctc import COLLAPSE_MAPS, DEFAULT_COLLAPSE
from .interventions import ShiftPlanner
from .trace import Displacement, Step, Trace, clean_response

REMASKING = ("low_confidence", "random", "margin", "entropy")


# ----------------------------------------------------------------------------- pure pieces
def transfer_schedule(masked_per_row: torch.Tensor, steps: int) -> torch.Tensor:
    """[B] mask counts -> [B, steps] tokens to commit per step: an even split, the remainder
    going to the earliest steps (LLaDA's linear noise schedule)."""
    base = masked_per_row[:, None] // steps
    extra = torch.arange(steps, device=masked_per_row.device)[None, :] < (masked_per_row[:, None] % steps)
    return base + extra.long()


def gumbel_argmax(logits_bld: torch.Tensor, temperature: float) -> torch.Tensor:
    """Sample x0 [B, L] the reference way: argmax of exp(logits) / (-log u)^T in float64.

    The noise tensor has the full [B, L, V] shape so the torch RNG advances exactly as in the
    reference; temperature 0 is plain argmax and draws nothing."""
    if temperature == 0:
        return logits_bld.argmax(-1)
    noise = torch.rand_like(logits_bld, dtype=torch.float64)
    return (logits_bld.to(torch.float64).exp() / (-torch.log(noise)) ** temperature).argmax(-1)


def confidence_scores(logits_nv: torch.Tensor, x0_n: torch.Tensor, remasking: str) -> torch.Tensor:
    """Score [N] (float64) of candidate x0 at N positions; higher = commit sooner.

    low_confidence: p(x0), with the softmax in the logits' own dtype exactly as the reference;
    margin: p(top1) - p(top2); entropy: minus the entropy of p (both in float32 at least)."""
    if remasking == "low_confidence":
        return F.softmax(logits_nv, dim=-1).gather(-1, x0_n[:, None]).squeeze(-1).to(torch.float64)
    logp = F.log_softmax(logits_nv.float() if logits_nv.dtype in (torch.float16, torch.bfloat16) else logits_nv, -1)
    if remasking == "margin":
        top2 = logp.topk(2, dim=-1).values.exp()
        return (top2[:, 0] - top2[:, 1]).to(torch.float64)
    if remasking == "entropy":
        return (logp.exp() * logp).nan_to_num().sum(-1).to(torch.float64)
    raise ValueError(f"no deterministic score for remasking={remasking!r}")


def repeat_mask(raw: torch.Tensor, mask_id: int, slack_id: int, keep: Sequence[int]) -> torch.Tensor:
    """Standard-collapse decoding (paper v1) on the raw committed tokens [..., L]: True where a
    committed token equals its committed left neighbour, i.e. where it must show as <slack>.

    Computed on the raw tokens, not on the canvas, so the result is the same whatever order the
    positions were committed in (a run of n equal tokens keeps only its first). Ids in `keep`
    (EOS/padding) never merge."""
    same = torch.zeros_like(raw, dtype=torch.bool)
    same[..., 1:] = (raw[..., 1:] == raw[..., :-1]) & (raw[..., 1:] != mask_id) & (raw[..., 1:] != slack_id)
    for k in keep:
        same &= raw != k
    return same


# ----------------------------------------------------------------------------- results
@dataclass
class Generation:
    """Output of `generate`: `tokens` [B, prompt + gen_length] (the raw canvas, left padding kept)
    and, when recorded, one `Trace` per sequence."""

    tokens: torch.Tensor
    prompt_length: int
    traces: list[Trace] = field(default_factory=list)
    slack_id: int | None = None
    eos_id: int | None = None
    displacements: list[list[Displacement]] = field(default_factory=list)  # per sequence, always kept
    unapplied_shifts: list[int] = field(default_factory=list)  # random shifts that found no token, ShiftAtCommit refused

    @property
    def trace(self) -> Trace | None:
        if not self.traces:
            return None
        if len(self.traces) > 1:
            raise ValueError("Batched generation: use .traces[i] for sequence i")
        return self.traces[0]

    def response_ids(self, i: int = 0, *, strip_slack: bool = True, stop_at_eos: bool = True) -> list[int]:
        return clean_response(self.tokens[i, self.prompt_length:].tolist(), self.eos_id, self.slack_id,
                              strip_slack=strip_slack, stop_at_eos=stop_at_eos)

    def texts(self, tokenizer, **kw) -> list[str]:
        return [tokenizer.decode(self.response_ids(i, **kw), skip_special_tokens=True) for i in range(len(self.tokens))]


# ----------------------------------------------------------------------------- the sampler
def _config_id(model, name):
    return getattr(getattr(model, "config", None), name, None)


def check_schedule(gen_length: int, block_length: int, steps: int, remasking: str = "low_confidence") -> int:
    """The decode schedule's rules, in words (the app and the CLIs check settings here too);
    returns the number of blocks."""
    if gen_length <= 0 or block_length <= 0 or steps <= 0:
        raise ValueError("gen_length, block_length and steps must be positive")
    if gen_length % block_length:
        raise ValueError(f"the generation length ({gen_length}) must be a multiple of the block length ({block_length})")
    blocks = gen_length // block_length
    if steps % blocks:
        raise ValueError(f"steps ({steps}) must be a multiple of the number of blocks ({blocks} = generation length "
                         "/ block length)")
    if steps > gen_length:
        raise ValueError(f"steps ({steps}) must not exceed the generation length ({gen_length}): a step commits at "
                         "least one token")
    if remasking not in REMASKING:
        raise ValueError(f"unknown remasking {remasking!r}: choose one of {', '.join(REMASKING)}")
    return blocks


def _check(prompt_ids, attention_mask, steps, gen_length, block_length, temperature, cfg_scale, remasking,
           mask_id, collapse, max_len, top_k, vocab):
    if prompt_ids.dim() != 2 or prompt_ids.shape[1] == 0:
        raise ValueError("prompt_ids must be a non-empty [batch, length] tensor of token ids (the prompt is empty)")
    if mask_id is None:
        raise ValueError("mask_id is unknown: pass mask_id= or use a model whose config has mask_token_id")
    blocks = check_schedule(gen_length, block_length, steps, remasking)
    if collapse is not None and collapse not in COLLAPSE_MAPS:
        raise ValueError(f"unknown collapse {collapse!r}: choose one of {', '.join(COLLAPSE_MAPS)}")
    if not (temperature >= 0 and cfg_scale >= 0 and top_k >= 0):  # also refuses NaN
        raise ValueError("temperature, cfg_scale and top_k must be numbers >= 0")
    if max_len is not None and prompt_ids.shape[1] + gen_length > max_len:
        raise ValueError(
            f"prompt ({prompt_ids.shape[1]} tokens) + gen_length ({gen_length}) exceeds the model's maximum of "
            f"{max_len} tokens: shorten the prompt or lower gen_length"
        )
    real = prompt_ids if attention_mask is None else prompt_ids.masked_fill(attention_mask == 0, -1)
    if bool((real == mask_id).any()):
        raise ValueError("the prompt contains the mask token; remove it (this sampler only fills the response)")
    if attention_mask is not None:
        if attention_mask.shape != prompt_ids.shape:
            raise ValueError("attention_mask must have the shape of prompt_ids")
        if bool((attention_mask.sum(1) == 0).any()):
            raise ValueError("a prompt in the batch is empty (its attention_mask is all zeros)")
        if bool((attention_mask[:, 1:] < attention_mask[:, :-1]).any()):
            raise ValueError("pad prompts on the left (tokenizer.padding_side = 'left'): the response follows the prompt")
    outside = (prompt_ids < 0) | (prompt_ids >= (vocab if vocab is not None else 2**62))
    if attention_mask is not None:
        outside &= attention_mask != 0
    if bool(outside.any()):
        raise ValueError(f"prompt ids must lie in [0, {vocab}): the tokenizer does not match the model")
    return blocks


def stream(model, prompt_ids, **settings) -> "DecodeStream":
    """Like `generate`, but iterate over it to receive each `Step` as soon as it is computed
    (for batch size 1; batched streams yield a list of Steps, one per sequence). After the loop,
    `.result` holds the `Generation` with its traces."""
    return DecodeStream(model, prompt_ids, settings)


class DecodeStream:
    def __init__(self, model, prompt_ids, settings):
        self.model, self.prompt_ids, self.settings = model, prompt_ids, settings
        self.result: Generation | None = None

    def __iter__(self) -> Iterator[Step | list[Step]]:
        settings = {k: v for k, v in self.settings.items() if k != "record_trace"}
        self.result = yield from _decode(self.model, self.prompt_ids, record_trace=True, **settings)


def generate(model, prompt_ids, **settings) -> Generation:
    """Decode a response for each prompt. Keyword arguments (all optional but the first two):

    steps=128, gen_length=128, block_length=128: total steps, response length, block length;
    temperature=0.0 (Gumbel-max in float64), cfg_scale=0.0 (unsupervised classifier-free guidance),
    remasking: "low_confidence" | "random" | "margin" | "entropy";
    mask_id, eos_id, eot_id, slack_id: default to the model config's ids;
    collapse: "slack" | "standard" | None (default: the config's `ctc_collapse` when it has a slack id);
    attention_mask: [B, Lp] for left-padded batches (1 = real token);
    logits_eos_inf: never sample EOS; confidence_eos_eot_inf: commit EOS/EoT predictions last;
    slack_bias=0.0: subtracted from <slack>'s logit before choosing and ranking (0 = the paper's
    decoding; higher commits fewer <slack>, 100 none: an ablation knob for CTC checkpoints);
    forbid_mask=True: never sample the mask token itself (the reference allows it: pass False for
    bit-exact parity with it on untrained models);
    interventions: a list of `Shift` and/or one `RandomShifts`;
    record_trace=False, top_k=3 (candidates kept per masked position in the trace);
    callback: called with each Step (or list of Steps when batched) as it is computed.
    """
    callback = settings.pop("callback", None)
    if callback is not None:
        settings["record_trace"] = True  # the callback receives the trace's Steps
    gen = _decode(model, prompt_ids, **settings)
    while True:
        try:
            step = next(gen)
        except StopIteration as done:
            return done.value
        if callback is not None:
            callback(step)


@torch.no_grad()
def _decode(
    model,
    prompt_ids: torch.Tensor,
    *,
    steps: int = 128,
    gen_length: int = 128,
    block_length: int = 128,
    temperature: float = 0.0,
    cfg_scale: float = 0.0,
    remasking: str = "low_confidence",
    mask_id: int | None = None,
    eos_id: int | None = None,
    eot_id: int | None = None,
    slack_id: int | None = None,
    collapse: str | None = None,
    attention_mask: torch.Tensor | None = None,
    logits_eos_inf: bool = False,
    confidence_eos_eot_inf: bool = False,
    slack_bias: float = 0.0,
    forbid_mask: bool = True,
    interventions: Sequence | None = (),
    record_trace: bool = False,
    top_k: int | None = 3,
):
    mask_id = _config_id(model, "mask_token_id") if mask_id is None else mask_id
    eos_id = _config_id(model, "eos_token_id") if eos_id is None else eos_id
    eot_id = _config_id(model, "eot_token_id") if eot_id is None else eot_id
    slack_id = _config_id(model, "slack_token_id") if slack_id is None else slack_id
    if collapse is None and slack_id is not None:
        collapse = _config_id(model, "ctc_collapse") or DEFAULT_COLLAPSE
    if hasattr(prompt_ids, "keys") and "input_ids" in prompt_ids:  # a tokenizer's BatchEncoding
        if attention_mask is None and "attention_mask" in prompt_ids:
            attention_mask = torch.as_tensor(prompt_ids["attention_mask"])
        prompt_ids = prompt_ids["input_ids"]
    if isinstance(prompt_ids, (list, tuple)):
        prompt_ids = torch.tensor([prompt_ids] if prompt_ids and isinstance(prompt_ids[0], int) else prompt_ids)
    if not isinstance(prompt_ids, torch.Tensor):
        raise ValueError(f"prompt_ids must be a tensor or a list of token ids, got {type(prompt_ids).__name__}")
    if prompt_ids.dim() == 1:
        prompt_ids = prompt_ids[None]
    if attention_mask is not None:
        attention_mask = torch.as_tensor(attention_mask)
        if attention_mask.dim() == 1:
            attention_mask = attention_mask[None]
    interventions = list(interventions or ())
    top_k = top_k or 0
    blocks = _check(prompt_ids, attention_mask, steps, gen_length, block_length, temperature, cfg_scale, remasking,
                    mask_id, collapse, _config_id(model, "max_sequence_length"), top_k,
                    _config_id(model, "embedding_size") or _config_id(model, "vocab_size"))
    if collapse == "standard" and slack_id is None:
        raise ValueError("collapse='standard' needs a slack id (slack_id= or config.slack_token_id)")
    if not math.isfinite(slack_bias):
        raise ValueError(f"slack_bias must be a finite number, got {slack_bias!r}")
    if slack_bias and slack_id is None:
        raise ValueError("slack_bias needs a slack id (slack_id= or config.slack_token_id): this model has no <slack>")

    device = next(model.parameters()).device
    B, Lp = prompt_ids.shape
    x = torch.full((B, Lp + gen_length), mask_id, dtype=torch.long, device=device)
    x[:, :Lp] = prompt_ids.to(device)
    if attention_mask is not None:
        attention_mask = torch.cat([attention_mask.to(device), attention_mask.new_ones(B, gen_length).to(device)], 1)
        if bool(attention_mask.all()):
            attention_mask = None  # nothing padded: skip the mask (and its slower attention path)
    is_prompt = torch.zeros_like(x, dtype=torch.bool)
    is_prompt[:, :Lp] = True  # padding included: it is never decoded
    raw = x.clone()  # the tokens as committed; differs from x only where standard collapse shows <slack>
    per_block = steps // blocks
    planner = ShiftPlanner(interventions, B, Lp, gen_length, steps, per_block, skip_ids=(eos_id, eot_id, slack_id))
    keep_ids = [i for i in (eos_id, _config_id(model, "pad_token_id")) if i is not None]
    emit = record_trace
    displacements: list[list[Displacement]] = [[] for _ in range(B)]
    traces = []
    if emit:
        settings = dict(steps=steps, gen_length=gen_length, block_length=block_length, temperature=temperature,
                        cfg_scale=cfg_scale, remasking=remasking, logits_eos_inf=logits_eos_inf,
                        confidence_eos_eot_inf=confidence_eos_eot_inf, slack_bias=slack_bias,
                        forbid_mask=forbid_mask, top_k=top_k,
                        interventions=[repr(iv) for iv in interventions])
        for b in range(B):
            real = prompt_ids[b] if attention_mask is None else prompt_ids[b][attention_mask[b, :Lp].bool().cpu()]
            traces.append(Trace(prompt=real.tolist(), gen_length=gen_length, steps_total=steps,
                                block_length=block_length, mask_id=mask_id, settings=settings, eos_id=eos_id,
                                slack_id=slack_id, collapse=collapse))

    def logits_of(canvas):
        if cfg_scale > 0:
            # Unsupervised CFG: a copy with the prompt masked is the "unconditional" model.
            uncond = canvas.masked_fill(is_prompt, mask_id)
            both = torch.cat([canvas, uncond])
            am = None if attention_mask is None else torch.cat([attention_mask, attention_mask])
            cond, un = model(both, attention_mask=am).logits.chunk(2)
            return un + (cfg_scale + 1) * (cond - un)
        return model(canvas, attention_mask=attention_mask).logits

    global_step = 0
    for blk in range(blocks):
        hi = Lp + (blk + 1) * block_length
        schedule = transfer_schedule((x[:, hi - block_length:hi] == mask_id).sum(1), per_block)
        for s in range(per_block):
            masked = x == mask_id
            logits = logits_of(x)
            if logits_eos_inf and eos_id is not None:
                logits[:, :, eos_id] = -torch.inf
            if slack_bias:
                # A CTC model keeps some mass on <slack> everywhere (it was trained on slack at random
                # places); where the content is uncertain that mass can win the argmax and the ranking.
                logits[:, :, slack_id] -= slack_bias
            if forbid_mask:
                # The reference lets a model "commit" the mask token, leaving a hole that may never
                # be filled; trained models give it ~0 probability, so forbidding it costs nothing.
                logits[:, :, mask_id] = -torch.inf
            x0 = gumbel_argmax(logits, temperature)
            # Only masked response positions up to the end of the current block compete.
            live = masked & ~is_prompt
            live[:, hi:] = False
            conf = torch.full(x.shape, -torch.inf, dtype=torch.float64, device=device)
            if remasking == "random":
                conf = torch.rand(x.shape, device=device).to(torch.float64)  # same draw as the reference
                conf = conf.masked_fill(~live, -torch.inf)
            elif live.any():
                lg = logits[live]
                if confidence_eos_eot_inf and remasking == "low_confidence":
                    # What the reference does at temperature 0 (and means to do at any T): score
                    # with EOS/EoT removed from the distribution, so their predictions get p = 0.
                    lg[:, [t for t in (eos_id, eot_id) if t is not None]] = -torch.inf
                conf[live] = confidence_scores(lg, x0[live], remasking)
            if confidence_eos_eot_inf and remasking != "low_confidence":
                lowest = torch.finfo(torch.float64).min  # rank EOS/EoT predictions last
                for tok in (eos_id, eot_id):
                    if tok is not None:
                        conf = torch.where(live & (x0 == tok), lowest, conf)
            commits = []
            for b in range(B):
                k = min(int(schedule[b, s]), int(live[b].sum()))
                idx = torch.topk(conf[b], k=k).indices if k > 0 else idx_empty(device)
                x[b, idx] = raw[b, idx] = x0[b, idx]
                commits.append(idx)
            fresh = [c.tolist() for c in commits]
            shifts = planner.apply(x, global_step, hi, mask_id, fresh)
            for b, moved in enumerate(shifts):
                for src, dst, tok in moved:
                    raw[b, dst], raw[b, src] = raw[b, src], mask_id
                    displacements[b].append(Displacement(global_step, src - Lp, dst - Lp, tok))
            merged = [[] for _ in range(B)]
            if collapse == "standard":
                shown = torch.where(repeat_mask(raw[:, Lp:], mask_id, slack_id, keep_ids), slack_id, raw[:, Lp:])
                newly = (shown == slack_id) & (x[:, Lp:] != slack_id)
                merged = [(newly[b].nonzero().flatten() + Lp).tolist() for b in range(B)]
                x[:, Lp:] = shown
            if emit:
                step_records = []
                cand = _candidates(logits, live, Lp, top_k) if top_k else [[] for _ in range(B)]
                canvas = x[:, Lp:].tolist()
                for b in range(B):
                    order = sorted(range(len(fresh[b])), key=lambda i: fresh[b][i])
                    pos = [fresh[b][i] for i in order]
                    st = Step(
                        index=global_step, block=blk, canvas=canvas[b],
                        positions=[p - Lp for p in pos],
                        tokens=[int(x0[b, p]) for p in pos],
                        confidences=[round(float(conf[b, p]), 6) for p in pos],
                        candidates=cand[b], merged=[p - Lp for p in merged[b]],
                        displacements=[d for d in displacements[b] if d.step == global_step],
                    )
                    traces[b].steps.append(st)
                    step_records.append(st)
                yield step_records[0] if B == 1 else step_records
            global_step += 1
    return Generation(tokens=x, prompt_length=Lp, traces=traces, slack_id=slack_id, eos_id=eos_id,
                      displacements=displacements,
                      unapplied_shifts=[a + b for a, b in zip(planner.unapplied, planner.refused)])


def idx_empty(device):
    return torch.empty(0, dtype=torch.long, device=device)


def _candidates(logits, live, Lp, k) -> list[list[tuple[int, list[int], list[float]]]]:
    """Top-k (token, probability) at the positions that competed for a commit this step (still
    masked, up to the end of the current block)."""
    out = []
    for b in range(logits.shape[0]):
        pos = live[b].nonzero().flatten()
        if len(pos) == 0:
            out.append([])
            continue
        lg = logits[b, pos].float()
        top = lg.topk(min(k, lg.shape[-1]), dim=-1)
        probs = (top.values - torch.logsumexp(lg, -1, keepdim=True)).exp()
        out.append([(p - Lp, ids, [round(v, 5) for v in pr])
                    for p, ids, pr in zip(pos.tolist(), top.indices.tolist(), probs.tolist())])
    return out
