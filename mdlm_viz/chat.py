"""Chat prompts and batched decoding: the one place a prompt is built and a batch is decoded.

The app, the evaluation, the demo-ability check, the robustness sweep and training all build their
prompts here, so a model is always asked the way it was trained: the tokenizer's chat template
with the assistant header appended (LLaDA's `apply_chat_template(..., add_generation_prompt=True)`),
and a response is its tokens followed by EOS.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import torch

from .sampling import Generation, generate

Messages = Sequence[Mapping[str, str]]  # [{"role": "user", "content": "..."}, ...]


def user_turn(text: str) -> list[dict]:
    """A one-turn conversation: what the app and the generated tasks ask."""
    return [{"role": "user", "content": text}]


def prompt_ids(tokenizer, messages: Messages | str) -> list[int]:
    """Token ids of a conversation (or of one user message) with the generation header appended.
    A tokenizer without a chat template (a bare pre-trained model) gets the plain text."""
    if isinstance(messages, str):
        messages = user_turn(messages)
    if not getattr(tokenizer, "chat_template", None):
        return list(tokenizer("\n".join(m["content"] for m in messages))["input_ids"])
    ids = tokenizer.apply_chat_template(list(messages), add_generation_prompt=True, tokenize=True, return_dict=False)
    return list(ids["input_ids"] if hasattr(ids, "keys") else ids)


def response_ids(tokenizer, text: str) -> list[int]:
    """A training response: the answer's tokens, then EOS (LLaDA's SFT format)."""
    return list(tokenizer(text, add_special_tokens=False)["input_ids"]) + [tokenizer.eos_token_id]


def left_pad(prompts: Sequence[Sequence[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Token-id prompts left-padded: ids [B, Lp] and an attention mask [B, Lp] (1 = real token)."""
    L = max(map(len, prompts))
    ids = torch.tensor([[pad_id] * (L - len(p)) + list(p) for p in prompts])
    mask = torch.tensor([[0] * (L - len(p)) + [1] * len(p) for p in prompts])
    return ids, mask


def decode(model, facts, prompts: Sequence[Sequence[int]], sampler: Mapping, interventions=(),
           record_trace: bool = False) -> Generation:
    """One batched decode of token-id prompts with a checkpoint's ids and collapse (`DecodingFacts`)
    plus the sampler settings (steps, lengths, remasking...)."""
    pad = facts.pad_id if facts.pad_id is not None else facts.eos_id
    ids, attn = left_pad(prompts, pad)
    return generate(model, ids, attention_mask=attn, interventions=list(interventions), record_trace=record_trace,
                    **{**facts.sampler_kwargs(), **sampler})


def decode_chats(model, tokenizer, facts, conversations: Sequence[Messages | str], sampler: Mapping,
                 interventions=(), record_trace: bool = False) -> Generation:
    """`decode` of conversations (or single user messages) through the chat template."""
    return decode(model, facts, [prompt_ids(tokenizer, m) for m in conversations], sampler, interventions,
                  record_trace)
