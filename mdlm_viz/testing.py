"""Tiny checkpoints made on the spot, for the tests and the benchmarks (no hub, no downloads).

A word-level tokenizer with LLaDA's special tokens and a chat template, and a random LLaDA saved
beside it as a checkpoint directory that `load_checkpoint` reads like any other.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from .configuration_llada import LLaDAConfig
from .modeling_llada import LLaDAModelLM

WORDS = ["the", "cat", "sat", "on", "mat", "a", "dog", "ran", "1", "0", "2", "copy", "reverse", ":", "?"]
SPECIALS = ["<|startoftext|>", "<|endoftext|>", "<|eot_id|>", "<|start_header_id|>", "<|end_header_id|>",
            "<|mdm_mask|>", "<slack>", "[UNK]"]
CHAT_TEMPLATE = (
    "{{ bos_token }}{% for m in messages %}<|start_header_id|>{{ m['role'] }}<|end_header_id|>"
    "{{ m['content'] }}<|eot_id|>{% endfor %}{% if add_generation_prompt %}"
    "<|start_header_id|>assistant<|end_header_id|>{% endif %}"
)
GENERATION = {"steps": 8, "gen_length": 16, "block_length": 8}  # the tiny checkpoints' sampler defaults


def make_tokenizer(with_slack: bool = True, vocab_size: int | None = None):
    """Word-level tokenizer over SPECIALS + WORDS, padded with words "w0", "w1", ... up to
    `vocab_size` entries when given (a stand-in with a real model's vocabulary size)."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    specials = SPECIALS if with_slack else [t for t in SPECIALS if t != "<slack>"]
    words = specials + WORDS
    words += [f"w{i}" for i in range(max(0, (vocab_size or 0) - len(words)))]
    tok = Tokenizer(models.WordLevel({t: i for i, t in enumerate(words)}, unk_token="[UNK]"))
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
                         tokenizer_has_slack: bool = True, vocab_size: int | None = None,
                         generation: dict | None = None, **config) -> Path:
    """A random LLaDA (`LLaDAConfig.small`, seed 0; `config` overrides its fields) with
    `make_tokenizer`'s tokenizer, saved to `directory`. `slack`: a CTC checkpoint with <slack>
    and the given collapse; `generation`: its generation_config.json (default GENERATION)."""
    tok = make_tokenizer(with_slack=tokenizer_has_slack, vocab_size=vocab_size)
    ids = tok.convert_tokens_to_ids
    cfg = LLaDAConfig.small(**{
        "vocab_size": len(tok), "mask_token_id": ids("<|mdm_mask|>"), "eos_token_id": ids("<|endoftext|>"),
        "pad_token_id": ids("<|endoftext|>"), "bos_token_id": ids("<|startoftext|>"), "eot_token_id": ids("<|eot_id|>"),
        "slack_token_id": ids("<slack>") if slack else None,
        "init_std": 0.3,  # peaked logits: argmax decisions far from ties
        **config})
    if slack:
        cfg.ctc_collapse = collapse
        cfg.training_objective = "ctc"
    torch.manual_seed(0)
    LLaDAModelLM(cfg).save_pretrained(directory)
    tok.save_pretrained(directory)
    (Path(directory) / "generation_config.json").write_text(json.dumps(generation or GENERATION))
    return Path(directory)
