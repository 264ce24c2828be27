"""The native LLaDA model: checkpoint names, config compatibility, attention, save/load, loader."""

import json

import pytest
import torch
from transformers import AutoConfig, AutoModel

import mdlm_viz as mv
from mdlm_viz import LLaDAConfig, LLaDAModelLM

# config.json of GSAI-ML/LLaDA-8B-Instruct with the sizes shrunk (field names and other values kept)
HUB_STYLE_CONFIG = {
    "activation_type": "silu", "alibi": False, "alibi_bias_max": 8.0, "architectures": ["LLaDAModelLM"],
    "attention_dropout": 0.0, "attention_layer_norm": False, "attention_layer_norm_with_affine": True,
    "auto_map": {"AutoConfig": "configuration_llada.LLaDAConfig", "AutoModel": "modeling_llada.LLaDAModelLM",
                 "AutoModelForCausalLM": "modeling_llada.LLaDAModelLM"},
    "bias_for_layer_norm": False, "block_group_size": 1, "block_type": "llama", "d_model": 64,
    "embedding_dropout": 0.0, "embedding_size": 384, "eos_token_id": 1, "flash_attention": False,
    "include_bias": False, "include_qkv_bias": False, "init_cutoff_factor": None, "init_device": "meta",
    "init_fn": "mitchell", "init_std": 0.02, "input_emb_norm": False, "layer_norm_type": "rms",
    "layer_norm_with_affine": True, "mask_token_id": 383, "max_sequence_length": 4096,
    "mlp_hidden_size": 96, "mlp_ratio": 4, "model_type": "llada", "multi_query_attention": None,
    "n_heads": 4, "n_kv_heads": 4, "n_layers": 2, "pad_token_id": 1, "precision": "amp_bf16",
    "residual_dropout": 0.0, "rms_norm_eps": 1e-05, "rope": True, "rope_full_precision": True,
    "rope_theta": 500000.0, "scale_logits": False, "torch_dtype": "bfloat16", "transformers_version": "4.46.3",
    "use_cache": False, "vocab_size": 384, "weight_tying": False,
}


def llada_names(n_layers):
    names = {"model.transformer.wte.weight", "model.transformer.ln_f.weight", "model.transformer.ff_out.weight"}
    for i in range(n_layers):
        for part in ("attn_norm", "ff_norm", "q_proj", "k_proj", "v_proj", "attn_out", "ff_proj", "up_proj", "ff_out"):
            names.add(f"model.transformer.blocks.{i}.{part}.weight")
    return names


def test_state_dict_names_are_exactly_llada_8b_names():
    model = LLaDAModelLM(LLaDAConfig.small(n_layers=3))
    assert set(model.state_dict()) == llada_names(3)


def test_default_config_is_llada_8b_and_counts_8b_parameters():
    cfg = LLaDAConfig()
    assert (cfg.d_model, cfg.n_layers, cfg.n_heads, cfg.mlp_hidden_size, cfg.vocab_size) == (4096, 32, 32, 12288, 126464)
    with torch.device("meta"):
        model = LLaDAModelLM(cfg)
    n = sum(p.numel() for p in model.parameters())
    assert 8.0e9 < n < 8.05e9  # LLaDA-8B has 8.02B parameters


def test_hub_config_json_loads_natively_without_remote_code(tmp_path):
    torch.manual_seed(0)
    reference = LLaDAModelLM(LLaDAConfig(**{k: v for k, v in HUB_STYLE_CONFIG.items() if k != "model_type"}))
    reference.save_pretrained(tmp_path)
    # overwrite with the hub's exact config.json (auto_map naming remote code that is not there)
    (tmp_path / "config.json").write_text(json.dumps(HUB_STYLE_CONFIG))
    cfg = AutoConfig.from_pretrained(tmp_path)  # no trust_remote_code
    assert isinstance(cfg, LLaDAConfig) and not hasattr(cfg, "auto_map")
    model = AutoModel.from_pretrained(tmp_path)
    assert isinstance(model, LLaDAModelLM) and model.dtype == torch.bfloat16  # the config's torch_dtype
    model = AutoModel.from_pretrained(tmp_path, dtype=torch.float32)
    ids = torch.randint(0, 383, (1, 9))
    assert torch.equal(model(ids).logits, reference(ids).logits)


@pytest.mark.parametrize("option", [{"alibi": True}, {"block_type": "sequential"}, {"include_bias": True},
                                    {"layer_norm_type": "default"}])
def test_unsupported_options_fail_loudly(option):
    with pytest.raises(ValueError, match="not supported"):
        LLaDAConfig.small(**option)


def test_attention_is_bidirectional(tiny_model):
    ids = torch.randint(0, 290, (1, 10))
    changed = ids.clone()
    changed[0, -1] = (ids[0, -1] + 1) % 290
    a, b = tiny_model(ids).logits, tiny_model(changed).logits
    assert not torch.allclose(a[0, 0], b[0, 0])  # position 0 sees the last token


def test_left_padding_with_attention_mask_leaves_real_positions_unchanged(tiny_model):
    ids = torch.randint(3, 290, (1, 8))
    padded = torch.cat([torch.full((1, 4), tiny_model.config.pad_token_id), ids], 1)
    mask = torch.tensor([[0] * 4 + [1] * 8])
    a = tiny_model(ids).logits
    b = tiny_model(padded, attention_mask=mask).logits[:, 4:]
    assert torch.allclose(a, b, atol=1e-4)  # RoPE is relative, padded keys are masked
    c = tiny_model(padded).logits[:, 4:]  # without the mask the padding leaks in
    assert not torch.allclose(a, c, atol=1e-3)


def test_gradient_checkpointing_gives_the_same_gradients():
    torch.manual_seed(0)
    model = LLaDAModelLM(LLaDAConfig.small()).train()
    ids = torch.randint(0, 500, (2, 12))
    model(ids).logits.square().mean().backward()
    plain = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    model.activation_checkpointing_enable({"use_reentrant": False})
    assert all(b.gradient_checkpointing for b in model.model.transformer.blocks)
    model(ids).logits.square().mean().backward()
    for g0, p in zip(plain, model.parameters()):
        assert torch.allclose(g0, p.grad, atol=1e-6)


def test_bfloat16_forward_is_close_to_float32(tiny_model):
    ids = torch.randint(0, 290, (2, 16))
    ref = tiny_model(ids).logits
    bf = LLaDAModelLM(tiny_model.config).eval()
    bf.load_state_dict(tiny_model.state_dict())
    out = bf.to(torch.bfloat16)(ids).logits
    assert out.dtype == torch.bfloat16
    assert (out.float() - ref).abs().max() < 0.05 * ref.abs().max()


def test_weight_tying_uses_the_embedding_as_head():
    model = LLaDAModelLM(LLaDAConfig.small(weight_tying=True))
    assert "model.transformer.ff_out.weight" not in model.state_dict()
    ids = torch.randint(0, 500, (1, 5))
    assert model(ids).logits.shape == (1, 5, 512)


def test_gqa_config_runs():
    model = LLaDAModelLM(LLaDAConfig.small(n_heads=4, n_kv_heads=2))
    assert model.model.transformer.blocks[0].k_proj.weight.shape == (32, 64)
    assert model(torch.randint(0, 500, (1, 6))).logits.shape == (1, 6, 512)


def test_sequence_over_the_maximum_is_refused():
    model = LLaDAModelLM(LLaDAConfig.small(max_sequence_length=8))
    with pytest.raises(ValueError, match="max_sequence_length"):
        model(torch.zeros(1, 9, dtype=torch.long))


def test_resize_adds_a_row_and_keeps_config_in_sync():
    model = LLaDAModelLM(LLaDAConfig.small(vocab_size=100))
    model.resize_token_embeddings(101)
    assert model.config.vocab_size == model.config.embedding_size == 101
    assert model(torch.tensor([[100]])).logits.shape[-1] == 101


# ---------------------------------------------------------------- load_checkpoint
def test_load_checkpoint_returns_model_tokenizer_and_decoding_facts(tiny_checkpoint):
    model, tok, facts = mv.load_checkpoint(tiny_checkpoint)
    assert not model.training and next(model.parameters()).dtype == torch.float32
    assert facts.mask_id == tok.convert_tokens_to_ids("<|mdm_mask|>")
    assert facts.eos_id == tok.eos_token_id and facts.slack_id is None and facts.objective is None
    assert facts.defaults["steps"] == 8
    ids = tok.apply_chat_template([{"role": "user", "content": "copy the cat"}], add_generation_prompt=True)
    g = mv.generate(model, ids, steps=8, gen_length=16, block_length=8, **facts.sampler_kwargs())
    assert isinstance(g.texts(tok)[0], str)


def test_load_checkpoint_knows_slack_and_collapse(tiny_ctc_checkpoint):
    ck = mv.load_checkpoint(tiny_ctc_checkpoint, dtype="bfloat16")
    assert ck.facts.slack_id == ck.tokenizer.convert_tokens_to_ids("<slack>")
    assert (ck.facts.objective, ck.facts.collapse) == ("ctc", "standard")
    assert ck.facts.sampler_kwargs()["collapse"] == "standard"
    assert next(ck.model.parameters()).dtype == torch.bfloat16


def test_hub_id_offline_fails_with_a_clear_message():
    with pytest.raises(FileNotFoundError, match="HF_HUB_OFFLINE"):
        mv.load_checkpoint("GSAI-ML/LLaDA-8B-Instruct")
    with pytest.raises(FileNotFoundError, match="'./no/such/dir' is missing"):
        mv.load_checkpoint("./no/such/dir")
    with pytest.raises(FileNotFoundError, match="HF_HUB_OFFLINE"):  # the explicit form of a hub id
        mv.load_checkpoint("hub:GSAI-ML/LLaDA-8B-Instruct")


def test_named_checkpoint_references_parse_in_one_place(tmp_path):
    from mdlm_viz.references import locate_checkpoint, parse_named_refs

    assert parse_named_refs("a=x/y, b=/tmp") == {"a": "x/y", "b": "/tmp"}
    assert parse_named_refs(["ce=assets/ce"]) == {"ce": "assets/ce"}
    for bad in (["just-a-path"], ["=x"], ["a="], ["a=x", "a=y"]):
        with pytest.raises(ValueError, match="NAME=PATH|twice"):
            parse_named_refs(bad)
    (tmp_path / "ck").mkdir()
    assert locate_checkpoint("ck", base_dir=tmp_path) == tmp_path / "ck"  # relative to the repo
    assert locate_checkpoint("owner/name") == "owner/name" and locate_checkpoint("hub:ck/x") == "ck/x"
    with pytest.raises(FileNotFoundError, match="is missing"):
        locate_checkpoint("assets/nope")


def test_4bit_needs_cuda(tiny_checkpoint):
    if torch.cuda.is_available():
        pytest.skip("exercised on the GPU machine")
    with pytest.raises(ValueError, match="CUDA"):
        mv.load_checkpoint(tiny_checkpoint, load_in_4bit=True, device="cpu")
