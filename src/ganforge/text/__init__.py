"""Text: the ``text`` modality (sentences of word ids), its vocabulary and tokenisation."""

from . import modality  # noqa: F401  (registers the 'text' modality)
from .vocab import BOS, EOS, PAD, SPECIALS, UNK, Vocabulary, detokenize, tokenize

__all__ = ["BOS", "EOS", "PAD", "SPECIALS", "UNK", "Vocabulary", "detokenize", "tokenize"]
