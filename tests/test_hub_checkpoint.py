"""A directory shaped like GSAI-ML/LLaDA-8B-Instruct (tiny widths, real vocabulary and ids) loads
natively: sharded safetensors with an index, the hub config.json with `auto_map`, remote-code
files that must never run, the tokenizer files, and an HF-style generation_config.json."""

import json

import pytest
import torch
from safetensors.torch import save_file
from transformers import AutoConfig, AutoModel, AutoModelForCausalLM, AutoTokenizer

import mdlm_viz as mv
from tests.reference.llada_oracle import make_random_state_dict, reference_forward
from tests.test_model import HUB_STYLE_CONFIG

V, MASK, BOS, EOS, EOT = 126464, 126336, 126080, 126081, 126348
SPECIALS = {BOS: "<|startoftext|>", EOS: "<|endoftext|>", MASK: "<|mdm_mask|>", 126346: "<|start_header_id|>",
            126347: "<|end_header_id|>", EOT: "<|eot_id|>"}
TEMPLATE = ("{% for m in messages %}{% set c = '<|start_header_id|>' + m['role'] + '<|end_header_id|>\\n\\n' + "
            "m['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set c = bos_token + c %}{% endif %}"
            "{{ c }}{% endfor %}{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}")


@pytest.fixture(scope="module")
def hub_dir(tmp_path_factory):
    from tokenizers import AddedToken, Tokenizer, models, pre_tokenizers

    d = tmp_path_factory.mktemp("LLaDA-8B-Instruct")
    cfg = dict(HUB_STYLE_CONFIG, d_model=16, n_heads=2, n_kv_heads=2, n_layers=3, mlp_hidden_size=32,
               vocab_size=V, embedding_size=V, mask_token_id=MASK, eos_token_id=EOS, pad_token_id=EOS)
    del cfg["torch_dtype"]  # the real config.json has none
    (d / "config.json").write_text(json.dumps(cfg))
    for f in ("configuration_llada.py", "modeling_llada.py"):
        (d / f).write_text(f"raise RuntimeError('remote code was executed: {f}')\n")
    (d / "generation_config.json").write_text(json.dumps(
        {"_from_model_config": True, "bos_token_id": BOS, "eos_token_id": EOS, "transformers_version": "4.46.3"}))
    sd = make_random_state_dict(cfg, seed=0, dtype=torch.bfloat16)
    weight_map = {}
    for i, name in enumerate(sorted(sd)):
        weight_map[name] = f"model-0000{i % 3 + 1}-of-00003.safetensors"
    for shard in set(weight_map.values()):
        save_file({n: sd[n].contiguous() for n, s in weight_map.items() if s == shard}, str(d / shard),
                  metadata={"format": "pt"})
    (d / "model.safetensors.index.json").write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))
    vocab = {SPECIALS.get(i, f"w{i}"): i for i in range(V)}
    vocab["[UNK]"] = vocab.pop("w5")
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.add_special_tokens([AddedToken(s, special=True, normalized=False) for s in SPECIALS.values()])
    tok.save(str(d / "tokenizer.json"))
    (d / "tokenizer_config.json").write_text(json.dumps({
        "bos_token": SPECIALS[BOS], "eos_token": SPECIALS[EOS], "pad_token": SPECIALS[EOS],
        "tokenizer_class": "PreTrainedTokenizerFast", "trust_remote_code": True, "chat_template": TEMPLATE}))
    return d, cfg, sd


def test_hub_directory_loads_natively_and_equals_the_reference(hub_dir):
    d, cfg, sd = hub_dir
    assert isinstance(AutoConfig.from_pretrained(d), mv.LLaDAConfig)
    model, tok, facts = mv.load_checkpoint(d, dtype=torch.bfloat16)  # never imports the .py files
    assert (facts.mask_id, facts.eos_id, facts.slack_id, facts.defaults) == (MASK, EOS, None, {})
    ids = torch.tensor([[BOS, 10, 11, 12, 126346, 13, 126347, MASK, MASK]])
    ref = reference_forward(sd, cfg, ids)
    assert torch.equal(model(ids).logits, ref)  # bit-exact, random norm weights included
    mask = torch.tensor([[0, 0, 1, 1, 1, 1, 1, 1, 1]])
    real = model(ids, attention_mask=mask).logits[:, 2:]
    assert torch.equal(real, reference_forward(sd, cfg, ids, attention_mask=mask)[:, 2:])
    chat = tok.apply_chat_template([{"role": "user", "content": "w10 w11"}], add_generation_prompt=True)
    out = mv.generate(model, chat, steps=4, gen_length=8, block_length=4, **facts.sampler_kwargs())
    assert out.tokens.shape == (1, len(chat["input_ids"]) + 8)


def test_auto_classes_and_save_round_trip(hub_dir, tmp_path):
    d, cfg, sd = hub_dir
    for auto in (AutoModel, AutoModelForCausalLM):
        model = auto.from_pretrained(d, dtype=torch.float32)
        assert isinstance(model, mv.LLaDAModelLM)
    AutoTokenizer.from_pretrained(d)
    model.save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "config.json").read_text())
    assert "auto_map" not in saved and saved["block_type"] == "llama" and saved["d_model"] == 16
    again = mv.LLaDAModelLM.from_pretrained(tmp_path)
    ids = torch.randint(0, 1000, (1, 6))
    assert torch.equal(again(ids).logits, model(ids).logits)
