"""Demo-grade data and the demo-ability check: stories, the generated stream, ShiftAtCommit,
shiftable positions, and mdlm_viz.reveal's figures on hand-made results."""

import random

import pytest
import torch

import mdlm_viz as mv
from mdlm_viz import reveal
from mdlm_viz.trace import Step, Trace
from train import corpus
from train.corpus import stories
from train.data import GeneratedSFT

PROMPT = torch.tensor([[10, 11, 12, 13, 14]])
KW = dict(steps=16, gen_length=16, block_length=16)


# ----------------------------------------------------------------------------- stories
def test_the_story_grammar_accepts_what_it_generates_and_little_else():
    rng = random.Random(0)
    for _ in range(200):
        prompt, text, meta = stories.story(rng)
        assert meta["name"] in prompt and meta["animal"] in prompt
        assert stories.accepts(text) and stories.accepts(text, meta["name"], meta["animal"])
    prompt, text, meta = stories.story(random.Random(1))
    other = next(n for n in stories.NAMES if n != meta["name"])
    assert not stories.accepts(text, other, meta["animal"])  # about someone else
    assert not stories.accepts(text.replace(".", "", 1))  # a sentence run on
    assert not stories.accepts(text + " " + text.split(". ")[1])  # three sentences
    assert not stories.accepts("the the the cat cat.")
    words = text.split()
    words[2], words[3] = words[3], words[2]
    assert not stories.accepts(" ".join(words))  # word order broken


# ----------------------------------------------------------------------------- the stream
def test_the_stream_is_a_pure_function_of_seed_and_index_and_never_draws_held_out_keys():
    a = [corpus.stream_example(i, seed=3) for i in range(300)]
    assert a == [corpus.stream_example(i, seed=3) for i in range(300)]
    assert [e.prompt for e in a] != [corpus.stream_example(i, seed=4).prompt for i in range(300)]
    assert [e.family for e in a[:7]] == list(corpus.FAMILIES)  # families take turns
    assert not any(corpus.in_heldout(e.key, 0.05) for e in a)
    held = [e for e in corpus.generate_tasks(700) if corpus.in_heldout(e.key, 0.05)]
    assert held and not {e.key for e in held} & {corpus.stream_example(i).key for i in range(3000)}
    # copy and reverse answers leave room for a cascade
    longest = max(len(e.answer.split()) for e in a if e.family in ("copy", "reverse"))
    assert longest >= 8


def test_generated_sft_tokenises_through_the_chat_template(tiny_checkpoint):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_checkpoint)
    ds = GeneratedSFT(tok, length=50, families=["copy", "count"], seed=1)
    assert len(ds) == 50
    ex = ds[7]
    assert ex == ds[7] and ex.response[-1] == tok.eos_token_id
    want = corpus.stream_example(7, 1, ("copy", "count"))
    assert ex.prompt == tok.apply_chat_template([{"role": "user", "content": want.prompt}],
                                                add_generation_prompt=True, tokenize=True, return_dict=False)
    with pytest.raises(ValueError, match="unknown task families"):
        GeneratedSFT(tok, 5, families=["poetry"])


def _items(example) -> int:
    return len(example.meta["items"])


def test_a_curriculum_starts_with_short_lists_and_ends_with_the_full_range(tiny_checkpoint):
    from transformers import AutoTokenizer

    families = ("copy", "reverse", "sort")
    full = [corpus.stream_example(i, 0, families) for i in range(600)]
    assert full == [corpus.stream_example(i, 0, families, scale=1.0) for i in range(600)]  # scale 1: unchanged
    short = [corpus.stream_example(i, 0, families, scale=0.0) for i in range(600)]
    assert max(map(_items, short)) <= 4 < max(map(_items, full))  # 3 items (+ a doubled word) at scale 0
    assert sum(map(_items, short)) < 0.7 * sum(map(_items, full))

    tok = AutoTokenizer.from_pretrained(tiny_checkpoint)
    ds = GeneratedSFT(tok, length=1000, families=list(families), curriculum=0.5)
    assert ds.sequential and ds.scale(0) == 0.0 and ds.scale(250) == 0.5 and ds.scale(500) == ds.scale(999) == 1.0
    assert ds[900] == GeneratedSFT(tok, 1000, families=list(families))[900]  # past the ramp: the plain stream
    with pytest.raises(ValueError, match="fraction of training"):
        GeneratedSFT(tok, 5, curriculum=2.0)


# ----------------------------------------------------------------------------- ShiftAtCommit
def test_shift_at_commit_moves_the_token_in_the_step_it_lands(tiny_model):
    clean = mv.generate(tiny_model, PROMPT, record_trace=True, **KW).trace
    commit = clean.commit_steps()
    mask = clean.mask_id
    # a position whose right neighbour is still masked when it is committed
    pos = next(p for p in range(15) if commit[p + 1] > commit[p])
    out = mv.generate(tiny_model, PROMPT, record_trace=True, interventions=[mv.ShiftAtCommit(pos)], **KW)
    step = commit[pos]
    assert out.trace.steps[:step] == clean.steps[:step]  # identical until then
    assert out.displacements[0] == [mv.Displacement(step, pos, pos + 1, clean.final[pos])]
    assert out.unapplied_shifts == [0] and mask not in out.trace.final


def test_shift_at_commit_is_refused_when_the_neighbour_is_already_committed(tiny_model):
    clean = mv.generate(tiny_model, PROMPT, record_trace=True, **KW).trace
    commit = clean.commit_steps()
    pos = next(p for p in range(15) if commit[p + 1] < commit[p])
    out = mv.generate(tiny_model, PROMPT, record_trace=True, interventions=[mv.ShiftAtCommit(pos)], **KW)
    assert out.displacements == [[]] and out.unapplied_shifts == [1]
    assert out.trace.final == clean.final
    with pytest.raises(ValueError, match="outside the response"):
        mv.generate(tiny_model, PROMPT, interventions=[mv.ShiftAtCommit(16)], **KW)


def test_shiftable_positions_rule():
    M, E, S = 9, 1, 6
    canvas = [3, M, 4, 4, M, E, M, S, M]
    assert mv.shiftable_positions(canvas, M) == [0, 3, 5, 7]  # EOS and <slack> move too unless skipped
    assert mv.shiftable_positions(canvas, M, skip_ids=(E, S)) == [0, 3]
    assert mv.shiftable_positions([3, M, E, M, S, M], M, skip_ids=(E, S)) == [0]
    assert mv.shiftable_positions([3, M, E, M, S, M], M) == [0, 2, 4]
    assert mv.shiftable_positions(canvas, M, hi=4) == [0]  # position 4 is past the block
    assert mv.shiftable_positions(canvas, M, direction=-1, skip_ids=(E, S)) == [2]


def test_shift_opportunities_counts_step_position_pairs():
    M = 9
    trace = Trace(prompt=[1], gen_length=4, steps_total=4, block_length=4, mask_id=M, settings={}, eos_id=1)
    for i, canvas in enumerate(([5, M, M, M], [5, 6, M, M], [5, 6, 7, 1], [5, 6, 7, 1])):
        trace.steps.append(Step(index=i, block=0, canvas=canvas, positions=[], tokens=[], confidences=[]))
    assert reveal.shift_opportunities(trace, skip_ids=(1,)) == 2  # 5 after step 0, 6 after step 1


# ----------------------------------------------------------------------------- the figures
def _d(text, applied=True, slack=0):
    return reveal.Decode(text, text.split(), slack, applied)


def _result(family, answer, ce, ctc, shifts):
    return reveal.PromptResult("p", family, answer, {"ce": _d(ce), "ctc": _d(ctc)}, {"ce": 10, "ctc": 12},
                             [reveal.ShiftResult(i, {"ce": _d(a), "ctc": _d(b, slack=1)}) for i, (a, b) in enumerate(shifts)])


def test_summarise_counts_demoable_prompts_and_per_shift_rates():
    results = [
        _result("copy", "1 2 3", "1 2 3", "1 2 3", [("1 2 3", "1 2 3"), ("1 9 2 3 4", "1 2 3")]),  # demo-able
        _result("copy", "4 5", "4 5", "4 5", [("4 5", "4 6")]),  # the reverse case
        _result("sort", "1 2", "1 2", "2 1", [("2", "1 2")]),  # ctc wrong clean: not counted
    ]
    s = reveal.summarise(results, "ce", "ctc")
    assert s["clean_accuracy"] == {"ce": 1.0, "ctc": round(2 / 3, 4)}
    assert s["both_right"] == 2 and s["shifts_on_both_right"] == 3
    assert s["demoable"] == round(1 / 3, 4) and s["reverse_case"] == round(1 / 3, 4)
    assert s["baseline_broken_per_shift"] == round(1 / 3, 4)
    assert s["candidate_intact_per_shift"] == round(2 / 3, 4)
    assert s["baseline_edit_distance_when_broken"] == 2  # "1 9 2 3 4" against "1 2 3"
    assert s["opportunities_per_decode"] == {"ce": 10, "ctc": 12}
    assert s["demoable_by_family"] == {"copy": 0.5, "sort": 0.0}


def test_best_shift_prefers_ce_broken_ctc_intact_then_the_bigger_cascade():
    r = _result("copy", "1 2 3", "1 2 3", "1 2 3",
                [("1 2 3", "1 2 3"), ("1 2 3 3", "1 2 3"), ("2 2 2 2 2", "1 2 3"), ("9 9 9", "1 1")])
    assert reveal.best_shift(r, "ce", "ctc").position == 2
    r.shifts[2].runs["ctc"] = _d("1 2 3", applied=False)  # a shift must apply in both
    assert reveal.best_shift(r, "ce", "ctc").position == 1


def test_a_focus_phase_draws_only_its_families_then_the_full_mix(tiny_checkpoint):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_checkpoint)
    ds = GeneratedSFT(tok, length=40, families=["count", "spell"], focus=["copy"], focus_fraction=0.5)
    drawn, plain = [], ds._example
    ds._example = lambda *a: drawn.append(corpus.stream_example(*a)) or drawn[-1]
    for i in range(40):
        ds[i]
    assert {e.family for e in drawn[:20]} == {"copy"} and {e.family for e in drawn[20:]} == {"count", "spell"}
    ds._example = plain
    assert ds[30] == GeneratedSFT(tok, length=40, families=["count", "spell"])[30]  # after the phase: the mix
    with pytest.raises(ValueError, match="focus families"):
        GeneratedSFT(tok, 5, focus_fraction=0.5)
