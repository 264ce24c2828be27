"""The sampler: schedule, confidences, traces, streaming, batching, slack decoding, bad input."""

import json
import sys

import pytest
import torch
from torch import nn
from transformers.modeling_outputs import MaskedLMOutput

import mdlm_viz as mv
from mdlm_viz import ctc
from mdlm_viz.sampling import confidence_scores, repeat_mask, transfer_schedule

PROMPT = torch.tensor([[10, 11, 12, 13, 14]])


class ScriptedModel(nn.Module):
    """A 'model' whose logits prefer a fixed script of tokens per position, with chosen confidence.

    `script[i]` is the token favoured at canvas position i; `strength[i]` its logit margin.
    """

    def __init__(self, config, script, strength=None):
        super().__init__()
        self.config = config
        self.anchor = nn.Parameter(torch.zeros(1))  # gives the sampler a device
        self.script = torch.tensor(script)
        self.strength = torch.tensor(strength if strength is not None else [4.0] * len(script))

    def forward(self, input_ids, attention_mask=None):
        B, L = input_ids.shape
        logits = torch.zeros(B, L, self.config.vocab_size)
        logits[:, torch.arange(L), self.script[:L]] = self.strength[:L]
        return MaskedLMOutput(logits=logits)


def test_transfer_schedule_splits_evenly_with_remainder_first():
    sched = transfer_schedule(torch.tensor([10, 8, 3]), 4)
    assert sched.tolist() == [[3, 3, 2, 2], [2, 2, 2, 2], [1, 1, 1, 0]]
    assert sched.sum(1).tolist() == [10, 8, 3]


def test_confidence_scores_on_a_hand_made_distribution():
    probs = torch.tensor([[0.5, 0.3, 0.2], [0.9, 0.05, 0.05]], dtype=torch.float64)
    logits, x0 = probs.log(), torch.tensor([1, 0])
    assert torch.allclose(confidence_scores(logits, x0, "low_confidence"), torch.tensor([0.3, 0.9], dtype=torch.float64))
    assert torch.allclose(confidence_scores(logits, x0, "margin"), torch.tensor([0.2, 0.85], dtype=torch.float64))
    ent = -(probs * probs.log()).sum(-1)
    assert torch.allclose(confidence_scores(logits, x0, "entropy"), -ent)


def test_every_position_is_committed_once_following_the_schedule(tiny_model):
    g = mv.generate(tiny_model, PROMPT, steps=8, gen_length=16, block_length=8, record_trace=True)
    tr = g.trace
    assert len(tr.steps) == 8
    assert [len(s.positions) for s in tr.steps] == [2] * 8
    committed = sorted(p for s in tr.steps for p in s.positions)
    assert committed == list(range(16))
    # semi-autoregressive: block 0 (positions 0-7) is finished before block 1 starts
    assert all(p < 8 for s in tr.steps[:4] for p in s.positions)
    assert all(p >= 8 for s in tr.steps[4:] for p in s.positions)
    assert tr.final == g.tokens[0, 5:].tolist()
    assert mv.LLaDAConfig.small().mask_token_id not in tr.final


def test_trace_replays_without_a_model_and_round_trips_json(tiny_model, tmp_path):
    g = mv.generate(tiny_model, PROMPT, steps=8, gen_length=16, block_length=16, record_trace=True, top_k=2)
    tr = g.trace
    canvas = tr.canvas_at(-1)
    for st in tr.steps:  # each step's canvas = previous canvas + this step's commits
        for p, t in zip(st.positions, st.tokens):
            assert canvas[p] == tr.mask_id
            canvas[p] = t
        assert canvas == st.canvas
        hi = (st.block + 1) * tr.block_length
        masked_before = [p for p, t in enumerate(tr.canvas_at(st.index - 1)[:hi]) if t == tr.mask_id]
        assert [c[0] for c in st.candidates] == masked_before
        assert all(len(c[1]) == 2 and c[2][0] >= c[2][1] for c in st.candidates)
    assert None not in tr.commit_steps()
    path = tmp_path / "trace.json"
    tr.to_json(path)
    data = json.loads(path.read_text())  # plain JSON: no tensors anywhere
    assert data["format"] == "mdlm-viz.trace/1"
    assert mv.Trace.from_json(path) == tr


def test_candidates_are_packed_and_read_like_their_rows():
    rows = [(3, [7, 9], [0.5, 0.25]), (5, [1, 2], [0.75, 0.125])]
    top = mv.TopK(rows)
    assert len(top) == 2 and top[1] == (5, [1, 2], [0.75, 0.125]) and top[-1] == top[1]
    assert top == rows and top == mv.TopK(rows) and top != mv.TopK(rows[:1])
    assert [p for p, _, _ in top] == [3, 5] and top[:1] == [(3, [7, 9], [0.5, 0.25])]
    with pytest.raises(IndexError):
        top[2]
    assert mv.Step(index=0, block=0, canvas=[0], positions=[], tokens=[], confidences=[],
                   candidates=rows).candidates == top  # rows as lists become packed
    with pytest.raises(ValueError, match="same number"):
        mv.TopK([(3, [7, 9], [0.5])])
    # Packed: a step's candidates take a fraction of what the same rows take as Python lists.
    many = [(p, [100 + p, 200 + p, 300 + p], [0.5, 0.25, 0.125]) for p in range(24)]
    listed = sys.getsizeof(many) + sum(sys.getsizeof(r) + sys.getsizeof(r[1]) + sys.getsizeof(r[2])
                                       + 3 * sys.getsizeof(r[1][0]) + 3 * sys.getsizeof(0.5) for r in many)
    packed = mv.TopK(many)
    assert sum(sys.getsizeof(a) for a in (packed._positions, packed._ids, packed._probs)) < listed / 4


def test_streaming_yields_the_same_steps_as_a_recorded_run(tiny_model):
    kw = dict(steps=8, gen_length=16, block_length=8)
    seen = []
    ref = mv.generate(tiny_model, PROMPT, record_trace=True, callback=seen.append, **kw)
    s = mv.stream(tiny_model, PROMPT, **kw)
    streamed = list(s)
    assert streamed == ref.trace.steps == seen
    assert torch.equal(s.result.tokens, ref.tokens)


def test_trace_recording_does_not_change_the_output(tiny_model):
    kw = dict(steps=8, gen_length=16, block_length=8, temperature=0.8, remasking="random")
    torch.manual_seed(3)
    a = mv.generate(tiny_model, PROMPT, **kw)
    torch.manual_seed(3)
    b = mv.generate(tiny_model, PROMPT, record_trace=True, **kw)
    assert torch.equal(a.tokens, b.tokens) and a.trace is None


@pytest.mark.parametrize("remasking", ["low_confidence", "margin", "entropy"])
def test_batched_left_padding_matches_single_prompts(tiny_model, remasking):
    p1, p2 = [20, 21, 22, 23, 24, 25], [30, 31, 32]
    pad = tiny_model.config.pad_token_id
    batch = torch.tensor([p1, [pad] * 3 + p2])
    mask = torch.tensor([[1] * 6, [0] * 3 + [1] * 3])
    kw = dict(steps=8, gen_length=16, block_length=8, remasking=remasking)
    both = mv.generate(tiny_model, batch, attention_mask=mask, record_trace=True, **kw)
    one = mv.generate(tiny_model, torch.tensor([p1]), **kw)
    two = mv.generate(tiny_model, torch.tensor([p2]), **kw)
    assert both.response_ids(0, stop_at_eos=False) == one.response_ids(0, stop_at_eos=False)
    assert both.response_ids(1, stop_at_eos=False) == two.response_ids(0, stop_at_eos=False)
    assert both.traces[1].prompt == p2


def test_cfg_runs_without_an_attention_mask(tiny_model):
    # The reference raises NameError here; CFG must work on an unpadded prompt.
    torch.manual_seed(0)
    g = mv.generate(tiny_model, PROMPT, steps=4, gen_length=8, block_length=8, cfg_scale=1.5)
    assert g.tokens.shape == (1, 13)


def test_confidence_eos_eot_inf_commits_eos_and_eot_last_at_any_temperature():
    cfg = mv.LLaDAConfig.small(vocab_size=50)
    eos, eot = cfg.eos_token_id, cfg.eot_token_id
    # positions 5..12 are the response; the most confident predictions are EOS and EoT
    script = [0] * 5 + [eos, eot, 20, 21, eos, 22, 23, eot]
    strength = [1.0] * 5 + [8, 9, 3, 4, 10, 5, 6, 11]
    model = ScriptedModel(cfg, script, strength)
    for temperature in (0.0, 0.5):
        torch.manual_seed(0)
        g = mv.generate(model, PROMPT, steps=4, gen_length=8, block_length=8, temperature=temperature,
                        confidence_eos_eot_inf=True, record_trace=True)
        firsts = g.trace.steps[0].positions + g.trace.steps[1].positions
        assert sorted(firsts) == [2, 3, 5, 6], f"temperature {temperature}: {firsts}"
        plain = mv.generate(model, PROMPT, steps=4, gen_length=8, block_length=8, record_trace=True)
        assert sorted(plain.trace.steps[0].positions) == [4, 7]


def test_logits_eos_inf_never_samples_eos():
    cfg = mv.LLaDAConfig.small(vocab_size=50)
    model = ScriptedModel(cfg, [0] * 5 + [cfg.eos_token_id] * 8, [1.0] * 5 + [9.0] * 8)
    g = mv.generate(model, PROMPT, steps=4, gen_length=8, block_length=8, logits_eos_inf=True)
    assert cfg.eos_token_id not in g.tokens[0, 5:].tolist()


def _slack_model(collapse):
    cfg = mv.LLaDAConfig.small(vocab_size=50, slack_token_id=40)
    cfg.ctc_collapse = collapse
    #            response: 1 0 0 <slack> 7 7 7 9
    script = [0] * 5 + [31, 30, 30, 40, 37, 37, 37, 39]
    return ScriptedModel(cfg, script)


def test_standard_collapse_turns_repeats_into_slack_and_strips_it():
    g = mv.generate(_slack_model("standard"), PROMPT, steps=8, gen_length=8, block_length=8, record_trace=True)
    raw = g.trace.final
    assert raw == [31, 30, 40, 40, 37, 40, 40, 39]  # the raw canvas keeps <slack>
    assert g.response_ids(0) == g.trace.response() == [31, 30, 37, 39]  # "100" became "10": the v1 failure
    assert sorted(p for s in g.trace.steps for p in s.merged) == [2, 5, 6]


def test_slack_collapse_never_merges():
    g = mv.generate(_slack_model("slack"), PROMPT, steps=8, gen_length=8, block_length=8, record_trace=True)
    assert g.trace.final == [31, 30, 30, 40, 37, 37, 37, 39]
    assert g.response_ids(0) == [31, 30, 30, 37, 37, 37, 39]
    assert all(not s.merged for s in g.trace.steps)


class _UnsureModel(ScriptedModel):
    """Every position: <slack> at logit 1.0, token 7 at 0.5 (a CTC model unsure of its content)."""

    def forward(self, input_ids, attention_mask=None):
        logits = torch.zeros(*input_ids.shape, self.config.vocab_size)
        logits[..., 40], logits[..., 7] = 1.0, 0.5
        return MaskedLMOutput(logits=logits)


def test_slack_bias_moves_the_argmax_from_slack_to_content_and_is_recorded():
    cfg = mv.LLaDAConfig.small(vocab_size=50, slack_token_id=40)
    model = _UnsureModel(cfg, [0] * 13)
    plain = mv.generate(model, PROMPT, steps=4, gen_length=8, block_length=8)
    assert plain.tokens[0, 5:].tolist() == [40] * 8 and plain.response_ids(0) == []
    biased = mv.generate(model, PROMPT, steps=4, gen_length=8, block_length=8, slack_bias=1.0, record_trace=True)
    assert biased.tokens[0, 5:].tolist() == [7] * 8
    assert biased.trace.settings["slack_bias"] == 1.0
    # a bias below the margin changes nothing
    assert mv.generate(model, PROMPT, steps=4, gen_length=8, block_length=8, slack_bias=0.4).tokens.equal(plain.tokens)


@pytest.mark.parametrize("bias, slack, message", [(float("nan"), 40, "finite"), (1.0, None, "no <slack>")])
def test_slack_bias_refuses_nan_and_models_without_slack(bias, slack, message):
    model = _UnsureModel(mv.LLaDAConfig.small(vocab_size=50, slack_token_id=slack), [0] * 13)
    with pytest.raises(ValueError, match=message):
        mv.generate(model, PROMPT, steps=4, gen_length=8, block_length=8, slack_bias=bias)


def test_repeat_mask_marks_every_later_member_of_a_run():
    raw = torch.tensor([5, 5, 5, 9, 1, 1, 7, 7])
    same = repeat_mask(raw, mask_id=9, slack_id=8, keep=[1])
    assert same.nonzero().flatten().tolist() == [1, 2, 7]


def test_standard_collapse_does_not_depend_on_commit_order():
    """All positions predict the same token: whatever the order, the canvas collapses like the
    raw committed tokens do under ctc.collapse(standard)."""
    cfg = mv.LLaDAConfig.small(vocab_size=60, slack_token_id=40)
    cfg.ctc_collapse = "standard"
    model = ScriptedModel(cfg, [0] * 5 + [50] * 8, [1.0] * 5 + [3, 9, 2, 8, 4, 7, 5, 6])
    g = mv.generate(model, PROMPT, steps=8, gen_length=8, block_length=8, record_trace=True)
    raw = [t for st in g.trace.steps for t in st.tokens]
    assert g.trace.final == [50] + [40] * 7
    assert g.response_ids(0) == ctc.collapse(raw, 40, "standard") == [50]


@pytest.mark.parametrize(
    "kw, message",
    [
        (dict(steps=7, gen_length=16, block_length=8), "multiple of the number of blocks"),
        (dict(steps=8, gen_length=16, block_length=5), "multiple of the block length"),
        (dict(steps=8, gen_length=16, block_length=8, remasking="best"), "unknown remasking"),
        (dict(steps=8, gen_length=600, block_length=600), "exceeds the model's maximum"),
        (dict(steps=32, gen_length=16, block_length=16), "must not exceed the generation length"),
        (dict(steps=8, gen_length=16, block_length=8, collapse="merge"), "unknown collapse"),
        (dict(steps=8, gen_length=16, block_length=8, temperature=-1), ">= 0"),
    ],
)
def test_bad_arguments_say_what_to_change(tiny_model, kw, message):
    with pytest.raises(ValueError, match=message):
        mv.generate(tiny_model, PROMPT, **kw)


def test_callback_alone_receives_every_step(tiny_model):
    seen = []
    mv.generate(tiny_model, PROMPT, steps=8, gen_length=16, block_length=8, callback=seen.append)
    assert [s.index for s in seen] == list(range(8))


def test_stream_accepts_record_trace_and_none_interventions(tiny_model):
    s = mv.stream(tiny_model, PROMPT, steps=4, gen_length=8, block_length=8, record_trace=True, interventions=None)
    assert len(list(s)) == 4 and s.result.trace is not None


def test_padding_is_never_decoded_even_when_pad_is_the_mask_id(tiny_model):
    mask_id = tiny_model.config.mask_token_id
    batch = torch.tensor([[20, 21, 22, 23], [mask_id, mask_id, 30, 31]])
    am = torch.tensor([[1, 1, 1, 1], [0, 0, 1, 1]])
    g = mv.generate(tiny_model, batch, attention_mask=am, steps=4, gen_length=8, block_length=8, record_trace=True)
    assert g.tokens[1, :2].tolist() == [mask_id, mask_id]  # padding untouched
    assert all(0 <= p < 8 for st in g.traces[1].steps for p in st.positions)
    with pytest.raises(ValueError, match="left"):
        mv.generate(tiny_model, torch.tensor([[20, 21, 1]]), attention_mask=torch.tensor([[1, 1, 0]]),
                    steps=4, gen_length=8, block_length=8)


def test_out_of_vocabulary_prompt_and_nan_temperature_are_refused(tiny_model):
    with pytest.raises(ValueError, match="tokenizer does not match"):
        mv.generate(tiny_model, [1, 2, 5000], steps=4, gen_length=8, block_length=8)
    with pytest.raises(ValueError, match=">= 0"):
        mv.generate(tiny_model, PROMPT, steps=4, gen_length=8, block_length=8, temperature=float("nan"))


def test_empty_prompt_and_masked_prompt_are_refused(tiny_model):
    with pytest.raises(ValueError, match="empty"):
        mv.generate(tiny_model, torch.zeros(1, 0, dtype=torch.long), steps=4, gen_length=8, block_length=8)
    with pytest.raises(ValueError, match="mask token"):
        mv.generate(tiny_model, [1, 2, tiny_model.config.mask_token_id], steps=4, gen_length=8, block_length=8)
