"""The fixed evaluation text of the perplexity measurement: Python's own reference topics.

Every Python ships ``pydoc_data.topics``: the topic pages of the Python language reference
(about 0.5 MB of human-written English, 79 topics in Python 3.11), the text ``help()``
shows. :func:`evaluation_text` joins the topics in sorted order of their names, so the text
is the same on every machine with the same Python release (:func:`text_digest` names it;
another release may edit the pages, which changes the digest and so the cache keys and the
pinned hashes of the tests).

:func:`token_windows` cuts the tokenised text into consecutive windows of ``length``
tokens and draws ``count`` of them with :class:`random.Random` (whose sequence Python keeps
stable across versions for a given seed), in text order. :func:`windows_digest` is the
sha256 of the chosen token ids: a test pins it, so a change of text, tokenizer, seed or
selection is a deliberate edit.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Sequence

__all__ = ["DEFAULT_SEED", "DEFAULT_TOKENS", "DEFAULT_WINDOW", "evaluation_text",
           "text_digest", "token_windows", "windows_digest"]

#: Tokens in the default evaluation (32 windows of 512).
DEFAULT_TOKENS = 16384
#: Tokens per window: each window is scored on its own (no context from the one before).
DEFAULT_WINDOW = 512
#: Seed of the draw of windows.
DEFAULT_SEED = 0


def evaluation_text() -> str:
    """The topic pages of ``pydoc_data.topics``, in sorted order of their names, separated
    by blank lines."""
    from pydoc_data.topics import topics

    return "\n\n".join(topics[name].strip() for name in sorted(topics)) + "\n"


def text_digest() -> str:
    """sha256 of :func:`evaluation_text` (UTF-8)."""
    return hashlib.sha256(evaluation_text().encode("utf-8")).hexdigest()


def _check_int(name: str, value: object, lo: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{name} must be an integer, not {value!r}")
    if value < lo:
        raise ValueError(f"{name} must be at least {lo}, not {value}")
    return value


def token_windows(tokenizer, *, count: int, length: int = DEFAULT_WINDOW,
                  seed: int = DEFAULT_SEED) -> list[list[int]]:
    """``count`` windows of ``length`` token ids from the evaluation text.

    The whole text is tokenised once, without special tokens; its first
    ``length * (n // length)`` tokens are cut into ``n // length`` consecutive windows, of
    which ``random.Random(seed).sample`` picks ``count``, returned in text order.

    Parameters
    ----------
    tokenizer
        A Hugging Face tokenizer (called as ``tokenizer(text, add_special_tokens=False)``).
    count, length, seed : int
        Windows, tokens per window (at least 2: the first token of a window is context
        only), seed of the draw.

    Raises
    ------
    TypeError, ValueError
        A bad parameter, or the text has fewer than ``count`` windows of ``length``.
    """
    _check_int("count", count, 1)
    _check_int("length", length, 2)
    _check_int("seed", seed, 0)
    ids = tokenizer(evaluation_text(), add_special_tokens=False)["input_ids"]
    available = len(ids) // length
    if count > available:
        raise ValueError(f"the evaluation text has {len(ids)} tokens: {available} windows of "
                         f"{length}, not {count}")
    chosen = sorted(random.Random(seed).sample(range(available), count))
    return [list(ids[i * length:(i + 1) * length]) for i in chosen]


def windows_digest(windows: Sequence[Sequence[int]]) -> str:
    """sha256 of the token ids, each as 4 little-endian bytes, window after window (each
    window preceded by its length)."""
    h = hashlib.sha256()
    for window in windows:
        h.update(len(window).to_bytes(4, "little"))
        for token in window:
            h.update(int(token).to_bytes(4, "little"))
    return h.hexdigest()
