"""Our native model and sampler against independent oracles of LLaDA's reference code.

`tests/reference/` re-derives the hub's `modeling_llada.py` forward pass and the official
`generate.py` (see its NOTES.md); the same math at any size, so random small configs suffice.
"""

import pytest
import torch

import mdlm_viz as mv
from mdlm_viz import LLaDAConfig, LLaDAModelLM
from tests.reference.generate_oracle import reference_generate
from tests.reference.llada_oracle import make_random_state_dict, reference_forward


def config_dict(cfg: LLaDAConfig) -> dict:
    return cfg.to_dict()


@pytest.mark.parametrize(
    "overrides",
    [dict(), dict(n_kv_heads=2), dict(weight_tying=True), dict(embedding_size=520), dict(n_layers=3, rope_theta=500000.0)],
)
def test_logits_equal_the_reference_forward(overrides):
    torch.manual_seed(0)
    cfg = LLaDAConfig.small(**overrides)
    model = LLaDAModelLM(cfg).eval()
    ids = torch.randint(0, 500, (2, 17))
    ours = model(ids).logits
    ref = reference_forward(model.state_dict(), config_dict(cfg), ids)
    torch.testing.assert_close(ours, ref, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_logits_are_bit_exact_with_random_norm_weights(dtype):
    """Norm weights drawn around 1 expose the order of cast and weight multiply; bf16 exposes
    where the rotary embedding is computed."""
    cfg = LLaDAConfig.small(n_layers=3, rope_theta=500000.0)
    sd = make_random_state_dict(cfg.to_dict(), seed=3, dtype=dtype)
    model = LLaDAModelLM(cfg).to(dtype).eval()
    model.load_state_dict(sd)
    ids = torch.randint(0, 500, (2, 19))
    assert torch.equal(model(ids).logits, reference_forward(sd, cfg.to_dict(), ids))


def test_logits_equal_the_reference_with_padding_mask_and_in_bfloat16():
    torch.manual_seed(1)
    cfg = LLaDAConfig.small()
    model = LLaDAModelLM(cfg).eval()
    ids = torch.randint(0, 500, (2, 12))
    mask = torch.ones(2, 12, dtype=torch.long)
    mask[1, :5] = 0
    ref = reference_forward(model.state_dict(), config_dict(cfg), ids, attention_mask=mask)
    ours = model(ids, attention_mask=mask).logits
    torch.testing.assert_close(ours[0], ref[0], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(ours[1, 5:], ref[1, 5:], rtol=1e-5, atol=1e-5)  # real positions
    model = model.to(torch.bfloat16)
    ours = model(ids).logits
    ref = reference_forward(model.state_dict(), config_dict(cfg), ids)
    assert ours.dtype == ref.dtype == torch.bfloat16
    torch.testing.assert_close(ours.float(), ref.float(), rtol=0.02, atol=0.02)


def _commits_by_step(trace_list, prompt_length):
    """Our traces -> [{'step': i, 'committed': sorted (batch, abs position, token)}]."""
    out = []
    for i in range(len(trace_list[0].steps)):
        committed = sorted((b, prompt_length + p, t) for b, tr in enumerate(trace_list)
                           for p, t in zip(tr.steps[i].positions, tr.steps[i].tokens))
        out.append(committed)
    return out


CASES = [
    dict(steps=8, gen_length=16, block_length=16),
    dict(steps=8, gen_length=16, block_length=4),
    dict(steps=12, gen_length=24, block_length=8, temperature=0.7),
    dict(steps=8, gen_length=16, block_length=8, remasking="random"),
    dict(steps=8, gen_length=16, block_length=8, remasking="random", temperature=1.0),
    dict(steps=8, gen_length=16, block_length=8, cfg_scale=1.0),
    dict(steps=8, gen_length=16, block_length=8, cfg_scale=0.5, temperature=0.5),
    dict(steps=5, gen_length=15, block_length=15),  # uneven split: remainder to the first steps
    dict(steps=8, gen_length=16, block_length=8, logits_eos_inf=True),
    dict(steps=8, gen_length=16, block_length=8, confidence_eos_eot_inf=True),  # T=0: the reference works
]


@pytest.mark.parametrize("settings", CASES, ids=[str(c) for c in CASES])
@pytest.mark.parametrize("padded", [False, True])
def test_sampler_commits_the_same_tokens_at_every_step_as_the_reference(settings, padded):
    torch.manual_seed(0)
    cfg = LLaDAConfig.small(vocab_size=300, init_std=0.3)
    model = LLaDAModelLM(cfg).eval()
    if padded:
        prompt = torch.tensor([[21, 22, 23, 24, 25, 26], [cfg.pad_token_id] * 2 + [31, 32, 33, 34]])
        mask = torch.tensor([[1] * 6, [0, 0, 1, 1, 1, 1]])
    else:
        prompt, mask = torch.tensor([[21, 22, 23, 24, 25, 26]]), None
    ids = dict(mask_id=cfg.mask_token_id, eos_id=cfg.eos_token_id, eot_id=cfg.eot_token_id)

    def model_fn(x, attention_mask):
        logits = model(x, attention_mask=attention_mask).logits
        logits[..., cfg.mask_token_id] = -1e9  # our default forbid_mask (finite: CFG subtracts logits)
        return logits

    record = []
    torch.manual_seed(123)
    ref = reference_generate(model_fn, prompt, attention_mask=mask, record=record, **ids, **settings)
    torch.manual_seed(123)
    ours = mv.generate(model, prompt, attention_mask=mask, record_trace=True, **ids, **settings)
    assert torch.equal(ours.tokens, ref)
    ref_steps = [sorted(tuple(c) for c in r["committed"]) for r in record]
    assert _commits_by_step(ours.traces, prompt.shape[1]) == ref_steps


class _Logits(torch.nn.Module):
    """Wraps a logits function as a model for mv.generate."""

    def __init__(self, cfg, fn):
        super().__init__()
        self.config, self.fn, self.anchor = cfg, fn, torch.nn.Parameter(torch.zeros(1))

    def forward(self, x, attention_mask=None):
        return type("Out", (), {"logits": self.fn(x, attention_mask)})()


def test_eos_heavy_parity_at_temperature_zero_with_confidence_eos_eot_inf():
    """At T=0 the reference's suppression works (EOS/EoT removed from the scoring softmax); ours
    must commit exactly the same tokens even when EOS dominates."""
    torch.manual_seed(0)
    cfg = LLaDAConfig.small(vocab_size=40, init_std=0.3)
    model = LLaDAModelLM(cfg).eval()

    def eos_heavy(x, attention_mask=None):
        logits = model(x, attention_mask=attention_mask).logits
        logits[..., cfg.eos_token_id] += 4.0
        logits[..., cfg.eot_token_id] += 2.0
        logits[..., cfg.mask_token_id] = -1e9
        return logits

    for seed in range(8):
        prompt = torch.randint(3, 38, (1, 5), generator=torch.Generator().manual_seed(seed))
        kw = dict(steps=8, gen_length=16, block_length=8, confidence_eos_eot_inf=True)
        torch.manual_seed(seed)
        ref = reference_generate(eos_heavy, prompt, mask_id=cfg.mask_token_id, eos_id=cfg.eos_token_id,
                                 eot_id=cfg.eot_token_id, **kw)
        torch.manual_seed(seed)
        ours = mv.generate(_Logits(cfg, eos_heavy), prompt, **kw)
        assert torch.equal(ours.tokens, ref)


def test_forbid_mask_false_is_the_reference_even_when_the_mask_token_is_committed():
    torch.manual_seed(0)
    cfg = LLaDAConfig.small(vocab_size=30, init_std=0.3)
    model = LLaDAModelLM(cfg).eval()

    def mask_friendly(x, attention_mask=None):
        logits = model(x, attention_mask=attention_mask).logits
        logits[..., cfg.mask_token_id] += 1.5  # the untrained model likes the mask token
        return logits

    holes = 0
    for seed in range(6):
        prompt = torch.randint(3, 28, (1, 4), generator=torch.Generator().manual_seed(seed))
        kw = dict(steps=8, gen_length=16, block_length=8, temperature=0.5)
        torch.manual_seed(seed)
        ref = reference_generate(mask_friendly, prompt, mask_id=cfg.mask_token_id, eos_id=cfg.eos_token_id,
                                 eot_id=cfg.eot_token_id, **kw)
        torch.manual_seed(seed)
        ours = mv.generate(_Logits(cfg, mask_friendly), prompt, forbid_mask=False, **kw)
        assert torch.equal(ours.tokens, ref)
        holes += int((ref == cfg.mask_token_id).sum())
    assert holes > 0  # the case is exercised: the reference leaves holes
    clean = mv.generate(_Logits(cfg, mask_friendly), prompt, **kw)
    assert cfg.mask_token_id not in clean.tokens[0, 4:].tolist()


def test_bfloat16_sampler_parity():
    torch.manual_seed(0)
    cfg = LLaDAConfig.small(vocab_size=300, init_std=0.3)
    model = LLaDAModelLM(cfg).to(torch.bfloat16).eval()

    def fn(x, attention_mask=None):
        logits = model(x, attention_mask=attention_mask).logits
        logits[..., cfg.mask_token_id] = -1e9
        return logits

    prompt = torch.tensor([[21, 22, 23, 24, 25]])
    for kw in (dict(), dict(temperature=0.6), dict(cfg_scale=1.0)):
        torch.manual_seed(1)
        ref = reference_generate(fn, prompt, steps=8, gen_length=16, block_length=8, mask_id=cfg.mask_token_id,
                                 eos_id=cfg.eos_token_id, eot_id=cfg.eot_token_id, **kw)
        torch.manual_seed(1)
        ours = mv.generate(model, prompt, steps=8, gen_length=16, block_length=8, **kw)
        assert torch.equal(ours.tokens, ref)


def test_eos_eot_confidence_fix_differs_from_the_reference_only_where_it_is_broken():
    """At temperature > 0 the reference leaves EOS predictions at full confidence (its -inf lands
    in a discarded tensor); ours commits them last, as intended."""
    torch.manual_seed(0)
    cfg = LLaDAConfig.small(vocab_size=40, init_std=0.3)
    model = LLaDAModelLM(cfg).eval()

    def eos_heavy(x, attention_mask=None):
        logits = model(x, attention_mask=attention_mask).logits
        logits[..., cfg.eos_token_id] += 6.0  # make EOS the favourite nearly everywhere
        logits[..., cfg.mask_token_id] = -torch.inf
        return logits

    class Wrapped(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.config, self.inner = cfg, model

        def forward(self, x, attention_mask=None):
            return type("O", (), {"logits": eos_heavy(x, attention_mask)})()

    prompt = torch.tensor([[21, 22, 23, 24]])
    kw = dict(steps=8, gen_length=16, block_length=16, temperature=0.3, confidence_eos_eot_inf=True)
    record = []
    torch.manual_seed(5)
    reference_generate(eos_heavy, prompt, record=record, mask_id=cfg.mask_token_id, eos_id=cfg.eos_token_id,
                       eot_id=cfg.eot_token_id, **kw)
    torch.manual_seed(5)
    ours = mv.generate(Wrapped(), prompt, record_trace=True, **kw)
    first_ref = [t for _, _, t in record[0]["committed"]]
    first_ours = ours.trace.steps[0].tokens
    assert cfg.eos_token_id in first_ref  # the reference commits EOS first: the defect
    assert cfg.eos_token_id not in first_ours
