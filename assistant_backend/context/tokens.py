"""One cheap, consistent token estimate for everything that counts context.

Exact counts need the model's tokenizer, which we do not have (the model is whatever Llama Stack
serves). About four characters per token holds for English and YAML with BPE tokenizers, and being
consistent matters more than being exact: budgets and the numbers the user sees use this function.
"""

from __future__ import annotations

CHARS_PER_TOKEN = 4


def estimate_tokens(text: str) -> int:
    return (len(text) + CHARS_PER_TOKEN - 1) // CHARS_PER_TOKEN
