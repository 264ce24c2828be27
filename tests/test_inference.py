"""The traced forward (mdlm_viz.inference) is the eager model, bit for bit, wherever it is used."""

import threading

import torch

import mdlm_viz as mv
from mdlm_viz import LLaDAConfig, LLaDAModelLM
from mdlm_viz.chat import left_pad
from mdlm_viz.inference import TracedLM, for_inference


def test_traced_logits_equal_eager_for_any_shape_and_padding(tiny_model):
    traced = for_inference(tiny_model)
    assert isinstance(traced, TracedLM)
    torch.manual_seed(1)
    with torch.inference_mode():
        for b, n in [(1, 5), (1, 61), (3, 17), (7, 40)]:  # none of them the traced example's (2, 8)
            ids = torch.randint(0, 300, (b, n))
            assert torch.equal(traced(ids).logits, tiny_model(ids).logits)
            mask = torch.ones(b, n, dtype=torch.long)
            assert torch.equal(traced(ids, attention_mask=mask).logits, tiny_model(ids, attention_mask=mask).logits)
            if b > 1:
                mask[0, : n // 2] = 0  # a left-padded row
                assert torch.equal(traced(ids, attention_mask=mask).logits,
                                   tiny_model(ids, attention_mask=mask).logits)


def test_traced_decodes_and_traces_equal_eager(tiny_model):
    traced = for_inference(tiny_model)
    ids, attn = left_pad([[5, 6, 7, 8, 9, 10], [11, 12]], 0)
    settings = dict(gen_length=12, steps=6, block_length=6, mask_id=299, eos_id=0, record_trace=True)
    a, b = mv.generate(tiny_model, ids, attention_mask=attn, **settings), mv.generate(traced, ids, attention_mask=attn,
                                                                                      **settings)
    assert torch.equal(a.tokens, b.tokens)
    for ta, tb in zip(a.traces, b.traces, strict=True):
        assert [(s.positions, s.tokens) for s in ta.steps] == [(s.positions, s.tokens) for s in tb.steps]


def test_traced_runs_from_two_threads_and_falls_back_where_it_does_not_apply(tiny_model):
    traced = for_inference(tiny_model)
    ids = torch.randint(0, 300, (2, 30))
    with torch.inference_mode():
        want = tiny_model(ids).logits
    got = []

    def work():
        with torch.inference_mode():
            got.extend(traced(ids).logits for _ in range(5))
    threads = [threading.Thread(target=work) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(got) == 10 and all(torch.equal(g, want) for g in got)
    # with gradients, or hidden states asked for, the eager model answers
    assert traced(ids).logits.requires_grad
    assert traced(ids, output_hidden_states=True).hidden_states is not None
    assert traced.config is tiny_model.config and traced.get_input_embeddings() is tiny_model.get_input_embeddings()
    # training mode and other dtypes are left alone
    training = LLaDAModelLM(LLaDAConfig.small(vocab_size=50))
    assert for_inference(training) is training
    half = LLaDAModelLM(LLaDAConfig.small(vocab_size=50)).eval().to(torch.bfloat16)
    assert for_inference(half) is half
