"""The ``text`` modality: sentences as token ids ``[T]`` (int64), read as lines of text.

Ids only mean words together with a vocabulary: data sets keep theirs in ``info["vocab"]``,
the trainer stamps it into the generator's metadata (:meth:`TextModality.generator_meta`), and
:meth:`TextModality.bind` gives every command a modality that decodes with it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from ..core import atomic_write_bytes
from ..errors import UserError
from ..modality import Media, Modality, register, write_npy, write_png, write_with_provenance
from .vocab import Vocabulary, detokenize

#: One sentence as a file: a line of UTF-8 text (the serve API's samples, ``synthesize``'s folders).
TXT = Media("text/plain", ".txt")

#: Sentences a preview shows, and its size.
PREVIEW_LINES = 16
PREVIEW_WIDTH, LINE_HEIGHT = 720, 16


def _vocabulary(modality: "TextModality") -> Vocabulary:
    if modality.vocab is None:
        raise UserError("these token ids come without their vocabulary (metadata 'vocab'): retrain the generator")
    return modality.vocab


def write_txt(modality: "TextModality", samples: torch.Tensor, path: Path, *,
              metadata: dict[str, Any] | None = None, **_: Any) -> Path:
    """One sentence a line (UTF-8); the provenance beside it in ``FILE.txt.provenance.json``."""
    lines = modality.lines(samples)
    return write_with_provenance(path, "".join(line + "\n" for line in lines).encode("utf-8"), metadata, sentences=len(lines))


def write_json(modality: "TextModality", samples: torch.Tensor, path: Path, *,
               metadata: dict[str, Any] | None = None, **_: Any) -> Path:
    """``{"provenance": {...}, "sentences": [...]}`` in one JSON file."""
    body = {"provenance": metadata or {}, "sentences": modality.lines(samples)}
    atomic_write_bytes(path, json.dumps(body, indent=1, ensure_ascii=False).encode("utf-8"))
    return path


class TextModality(Modality):
    """Sentences of word ids ``[T]`` (``<eos>`` then ``<pad>`` after the last word): stored and modelled as int64."""

    name = "text"
    plural = "sentences"
    description = "sentences as word ids [T] (int64; .txt lines, scored by BLEU)"
    default_metrics = ("bleu", "self-bleu")
    extractor = None
    writers = {".txt": write_txt, ".json": write_json, ".png": write_png, ".npy": write_npy}
    preview_caption = "sentences"
    media = TXT
    data_suffixes = (".txt",)

    def __init__(self, vocab: Vocabulary | None = None) -> None:
        self.vocab = vocab

    def bind(self, context: dict[str, Any]) -> "TextModality":
        words = (context or {}).get("vocab")
        return TextModality(Vocabulary(words)) if words else self

    def generator_meta(self, dataset: Any) -> dict[str, Any]:
        return {"vocab": list(dataset.info["vocab"])}

    def source_info(self, meta: dict[str, Any]) -> dict[str, Any]:
        return {"vocab": meta.get("vocab")}

    def check(self, data: torch.Tensor, what: str) -> None:
        if data.dim() != 2 or data.dtype != torch.long:
            raise UserError(f"{what}: sentences must be int64 word ids [N, T], got {data.dtype} {tuple(data.shape)}")

    def to_model(self, stored: torch.Tensor) -> torch.Tensor:
        return stored.long()

    def to_stored(self, outputs: torch.Tensor) -> torch.Tensor:
        return outputs.detach().round().long()

    def features(self, stored: torch.Tensor) -> torch.Tensor:
        raise UserError("sentences have no feature vectors: score them with bleu, self-bleu, nll or copy")

    def sentences(self, samples: torch.Tensor) -> list[list[str]]:
        """Ids (stored or generator outputs) -> lists of words."""
        return _vocabulary(self).decode(self.to_stored(samples))

    def lines(self, samples: torch.Tensor) -> list[str]:
        """Ids -> one line of text per sentence."""
        return [detokenize(words) for words in self.sentences(samples)]

    def preview(self, samples: torch.Tensor, *, nrow: int | None = None, reference: torch.Tensor | None = None) -> Image.Image:
        lines = self.lines(samples[:PREVIEW_LINES])
        image = Image.new("RGB", (PREVIEW_WIDTH, LINE_HEIGHT * len(lines) + 8), "white")
        draw, font = ImageDraw.Draw(image), ImageFont.load_default()
        for i, line in enumerate(lines):
            draw.text((6, 4 + LINE_HEIGHT * i), f"{i + 1:>2}. {line}", fill=(20, 20, 20), font=font)
        return image

    def encode(self, stored: torch.Tensor, metadata: dict[str, Any], *, scale: int = 1) -> bytes:
        """One sentence as a line of UTF-8 text (plain text has nowhere to keep ``metadata``: the API returns it beside)."""
        return (self.lines(stored[None])[0] + "\n").encode("utf-8")

    def size(self, shape: tuple[int, ...], count: int, scale: int = 1) -> tuple[int, str]:
        tokens = count * int(np.prod(shape))
        return tokens, f"{count} sentences of up to {int(np.prod(shape))} words ({tokens} in all)"


register(TextModality())
