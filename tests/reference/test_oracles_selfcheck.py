"""Quick sanity checks of the reference oracles themselves (not of mdlm_viz)."""

import torch

from .generate_oracle import num_transfer_tokens, reference_generate
from .llada_oracle import LLADA_8B_CONFIG, make_random_state_dict, reference_forward

VOCAB = 48
MASK_ID = 47
EOS_ID = 45
EOT_ID = 46

TINY = dict(
    LLADA_8B_CONFIG,
    d_model=32,
    n_heads=4,
    n_kv_heads=4,
    n_layers=2,
    mlp_hidden_size=48,
    vocab_size=VOCAB,
    embedding_size=VOCAB,
    max_sequence_length=64,
    mask_token_id=MASK_ID,
    eos_token_id=EOS_ID,
    pad_token_id=EOS_ID,
)


def _weights(config=TINY, seed=0):
    return make_random_state_dict(config, seed=seed)


def _ids(batch=2, length=10, seed=1):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, VOCAB - 3, (batch, length), generator=g)


def test_forward_shape_and_finite():
    logits = reference_forward(_weights(), TINY, _ids())
    assert logits.shape == (2, 10, VOCAB)
    assert torch.isfinite(logits).all()


def test_forward_is_not_causal():
    sd = _weights()
    ids = _ids()
    base = reference_forward(sd, TINY, ids)
    changed = ids.clone()
    changed[:, -1] = (changed[:, -1] + 1) % (VOCAB - 3)
    other = reference_forward(sd, TINY, changed)
    assert not torch.allclose(base[:, 0], other[:, 0])


def test_padding_keys_are_ignored():
    sd = _weights()
    ids = _ids(batch=1, length=9)
    mask = torch.ones_like(ids)
    mask[:, :3] = 0  # left padding
    ref = reference_forward(sd, TINY, ids, attention_mask=mask)
    garbage = ids.clone()
    garbage[:, :3] = torch.tensor([5, 17, 30])
    out = reference_forward(sd, TINY, garbage, attention_mask=mask)
    # the unpadded positions never see the padded keys
    torch.testing.assert_close(out[:, 3:], ref[:, 3:], rtol=1e-5, atol=1e-5)
    # an all-ones mask is the same as no mask
    torch.testing.assert_close(
        reference_forward(sd, TINY, ids, attention_mask=torch.ones_like(ids)),
        reference_forward(sd, TINY, ids),
    )


def test_gqa_config_runs():
    cfg = dict(TINY, n_kv_heads=2)
    logits = reference_forward(make_random_state_dict(cfg), cfg, _ids())
    assert logits.shape == (2, 10, VOCAB) and torch.isfinite(logits).all()


def test_transfer_schedule_puts_remainder_first():
    counts = num_transfer_tokens(torch.ones(1, 10, dtype=torch.bool), 4)
    assert counts.tolist() == [[3, 3, 2, 2]]


def _model_fn(sd):
    # The reference sampler never bans mask_id; random weights could predict it
    # (a committed mask_id would be re-decoded later), so the test model does.
    def fn(x, am):
        logits = reference_forward(sd, TINY, x, attention_mask=am)
        logits[..., MASK_ID] = -1e4
        return logits

    return fn


def _check_run(record, prompt_len, gen_length, block_length, steps, batch):
    per_block = steps // (gen_length // block_length)
    assert len(record) == steps
    for row in range(batch):
        positions = []
        for entry in record:
            lo = prompt_len + entry["block"] * block_length
            for r, pos, _tok in entry["committed"]:
                if r == row:
                    assert lo <= pos < lo + block_length  # block order respected
                    positions.append(pos)
        assert sorted(positions) == list(range(prompt_len, prompt_len + gen_length))
    assert [(e["block"], e["step"]) for e in record] == [
        (b, i) for b in range(gen_length // block_length) for i in range(per_block)
    ]


def test_generate_commits_every_position_once_in_block_order():
    sd = _weights()
    prompt = _ids(batch=2, length=5)
    for kwargs in (
        dict(temperature=0.0),
        dict(temperature=1.0, remasking="random"),
        dict(temperature=0.5, cfg_scale=1.0, confidence_eos_eot_inf=True),
    ):
        torch.manual_seed(0)
        record = []
        out = reference_generate(
            _model_fn(sd), prompt, steps=6, gen_length=12, block_length=4,
            mask_id=MASK_ID, eos_id=EOS_ID, eot_id=EOT_ID, record=record, **kwargs,
        )
        assert out.shape == (2, 17)
        assert (out[:, :5] == prompt).all()
        assert (out != MASK_ID).all()
        _check_run(record, 5, 12, 4, 6, 2)
        final = {(r, p): t for e in record for r, p, t in e["committed"]}
        assert all(out[r, p] == t for (r, p), t in final.items())


def test_generate_with_padding_mask_and_eos_ban():
    sd = _weights()
    prompt = _ids(batch=2, length=6)
    prompt[0, :2] = EOS_ID  # left padding with the pad (= EOS) token
    mask = torch.ones_like(prompt)
    mask[0, :2] = 0
    record = []
    out = reference_generate(
        _model_fn(sd), prompt, attention_mask=mask, steps=8, gen_length=8, block_length=8,
        mask_id=MASK_ID, logits_eos_inf=True, eos_id=EOS_ID, eot_id=EOT_ID, record=record,
    )
    _check_run(record, 6, 8, 8, 8, 2)
    assert (out[:, 6:] != EOS_ID).all()


def test_greedy_generate_is_deterministic_and_draws_no_rng():
    sd = _weights()
    prompt = _ids(batch=1, length=4)
    torch.manual_seed(123)
    a = reference_generate(_model_fn(sd), prompt, steps=4, gen_length=4, block_length=4, mask_id=MASK_ID)
    after = torch.rand(1)
    torch.manual_seed(123)
    b = reference_generate(_model_fn(sd), prompt, steps=4, gen_length=4, block_length=4, mask_id=MASK_ID)
    assert torch.equal(a, b)
    torch.manual_seed(123)
    assert torch.equal(torch.rand(1), after)  # temperature 0 consumed no random numbers


def _fixed_logits_fn(first_token):
    """Position 2 predicts `first_token` confidently, position 3 predicts 5 weakly."""

    def fn(x, am):
        logits = torch.zeros(x.shape[0], x.shape[1], 8)
        logits[:, 2, first_token] = 5.0
        logits[:, 3, 5] = 1.0
        return logits

    return fn


def _first_commit(first_token, temperature, flag):
    record = []
    torch.manual_seed(0)
    reference_generate(
        _fixed_logits_fn(first_token), torch.tensor([[3, 4]]), steps=2, gen_length=2, block_length=2,
        temperature=temperature, mask_id=7, confidence_eos_eot_inf=flag, eos_id=1, eot_id=2, record=record,
    )
    return record[0]["committed"]


def test_eos_eot_confidence_defect_semantics():
    # without the flag the confident position goes first
    assert _first_commit(1, 0.0, False) == [(0, 2, 1)]
    # temperature 0: EOS and EoT predictions both get confidence 0
    assert _first_commit(1, 0.0, True) == [(0, 3, 5)]
    assert _first_commit(2, 0.0, True) == [(0, 3, 5)]
    # temperature > 0: only EoT is suppressed; EOS keeps its confidence
    assert _first_commit(1, 1e-3, True) == [(0, 2, 1)]
    assert _first_commit(2, 1e-3, True) == [(0, 3, 5)]
