"""Words and their ids: tokenisation and the vocabulary of a text data set.

Sentences are split into words and punctuation marks (``"wheel."`` -> ``wheel``, ``.``), the
tokenisation Texygen's COCO files were written in. Ids 0-3 are the special tokens: padding
after the end of a sentence, the start token the generator is primed with, the end token it
emits to stop, and the stand-in for words left out of a capped vocabulary.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Iterable, Sequence

import torch

SPECIALS = ("<pad>", "<bos>", "<eos>", "<unk>")
PAD, BOS, EOS, UNK = range(len(SPECIALS))

_TOKEN = re.compile(r"[\w']+|[^\w\s]")


def tokenize(line: str) -> list[str]:
    """Words (letters, digits, apostrophes) and single punctuation marks of one line."""
    return _TOKEN.findall(line)


class Vocabulary:
    """The words of a data set by id (the 4 :data:`SPECIALS` first), most frequent first."""

    def __init__(self, words: Sequence[str]) -> None:
        if tuple(words[: len(SPECIALS)]) != SPECIALS:
            raise ValueError(f"a vocabulary starts with {', '.join(SPECIALS)}")
        self.words = list(words)
        self.index = {w: i for i, w in enumerate(self.words)}

    @classmethod
    def build(cls, sentences: Iterable[Sequence[str]], max_size: int | None = None) -> "Vocabulary":
        """The words of ``sentences`` by falling count (ties alphabetical), capped at ``max_size`` ids in all."""
        counts = Counter(w for s in sentences for w in s if w not in SPECIALS)
        ranked = sorted(counts, key=lambda w: (-counts[w], w))
        keep = None if max_size is None else max(0, max_size - len(SPECIALS))
        return cls([*SPECIALS, *ranked[:keep]])

    def __len__(self) -> int:
        return len(self.words)

    def encode(self, sentences: Sequence[Sequence[str]], length: int) -> torch.Tensor:
        """int64 ``[N, length + 1]``: each sentence's ids, then ``<eos>``, then ``<pad>`` (sentences must fit)."""
        out = torch.full((len(sentences), length + 1), PAD, dtype=torch.long)
        for row, sentence in enumerate(sentences):
            if len(sentence) > length:
                raise ValueError(f"a sentence of {len(sentence)} words does not fit in {length}")
            ids = [self.index.get(w, UNK) for w in sentence] + [EOS]
            out[row, : len(ids)] = torch.tensor(ids)
        return out

    def decode(self, ids: torch.Tensor) -> list[list[str]]:
        """Token ids ``[N, T]`` -> words, each sentence up to its first ``<eos>`` or ``<pad>``."""
        sentences = []
        for row in ids.tolist():
            words = []
            for i in row:
                if i in (EOS, PAD):
                    break
                if i != BOS:
                    words.append(self.words[i] if 0 <= i < len(self.words) else SPECIALS[UNK])
            sentences.append(words)
        return sentences


def detokenize(words: Sequence[str]) -> str:
    """Words back into a line: punctuation attached to the word before it (``wheel .`` -> ``wheel.``)."""
    text = ""
    for w in words:
        text += w if (text == "" or (len(w) == 1 and not w.isalnum() and w not in "([{\"")) else " " + w
    return text
