"""Builders for test checkpoints: a word-level tokenizer with LLaDA's special tokens, a tiny model."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from mdlm_viz import LLaDAConfig, LLaDAModelLM

WORDS = ["the", "cat", "sat", "on", "mat", "a", "dog", "ran", "1", "0", "2", "copy", "reverse", ":", "?"]
SPECIALS = ["<|startoftext|>", "<|endoftext|>", "<|eot_id|>", "<|start_header_id|>", "<|end_header_id|>",
            "<|mdm_mask|>", "<slack>", "[UNK]"]
CHAT_TEMPLATE = (
    "{{ bos_token }}{% for m in messages %}<|start_header_id|>{{ m['role'] }}<|end_header_id|>"
    "{{ m['content'] }}<|eot_id|>{% endfor %}{% if add_generation_prompt %}"
    "<|start_header_id|>assistant<|end_header_id|>{% endif %}"
)


def make_tokenizer(with_slack: bool = True):
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    specials = SPECIALS if with_slack else [t for t in SPECIALS if t != "<slack>"]
    vocab = {t: i for i, t in enumerate(specials + WORDS)}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<|startoftext|>", eos_token="<|endoftext|>", pad_token="<|endoftext|>",
        mask_token="<|mdm_mask|>", unk_token="[UNK]",
        additional_special_tokens=(["<slack>"] if with_slack else []) + ["<|eot_id|>", "<|start_header_id|>",
                                                                        "<|end_header_id|>"],
    )
    fast.chat_template = CHAT_TEMPLATE
    return fast


def make_tiny_checkpoint(directory: Path, slack: bool = False, collapse: str = "slack",
                         tokenizer_has_slack: bool = True) -> Path:
    tok = make_tokenizer(with_slack=tokenizer_has_slack)
    ids = tok.convert_tokens_to_ids
    cfg = LLaDAConfig.small(
        vocab_size=len(tok), mask_token_id=ids("<|mdm_mask|>"), eos_token_id=ids("<|endoftext|>"),
        pad_token_id=ids("<|endoftext|>"), bos_token_id=ids("<|startoftext|>"), eot_token_id=ids("<|eot_id|>"),
        slack_token_id=ids("<slack>") if slack else None, init_std=0.3,
    )
    if slack:
        cfg.ctc_collapse = collapse
        cfg.training_objective = "ctc"
    torch.manual_seed(0)
    LLaDAModelLM(cfg).save_pretrained(directory)
    tok.save_pretrained(directory)
    (Path(directory) / "generation_config.json").write_text(json.dumps({"steps": 8, "gen_length": 16, "block_length": 8}))
    return Path(directory)
