"""Text metrics (Texygen's protocol): BLEU against the test split, Self-BLEU, the test set's NLL, the copy rate.

Sentences are compared as words (the ids decoded by the samples' own vocabulary), so a test
word that the training vocabulary lacks never matches a generated ``<unk>``. Importing this
module registers ``bleu``, ``self-bleu``, ``nll`` and ``copy``.
"""

from __future__ import annotations

from typing import Any

import torch

from ..config import DataConfig
from ..core import eval_mode
from ..errors import UserError
from ..metrics.bleu import bleu, copy_rate, self_bleu
from ..text import PAD, UNK
from .registry import EvalInputs, register_metric
from .sources import Source, other_split, require_modality

#: BLEU-n and Self-BLEU-n are reported for these n (Texygen's).
ORDERS = (2, 3, 4, 5)
#: Sentences scored by NLL at once.
NLL_BATCH = 500


def _text(source: Source | None, what: str) -> Source:
    return require_modality(source, "text", what, "sentences")


def split_of(real: Source | None, split: str, metric: str) -> Any:
    """The ``split`` split (a :class:`~ganforge.data.Dataset`) of the text data set the real sentences come from."""
    cfg: DataConfig | None = None if real is None else real.info.get("data_config")
    if cfg is None:
        raise UserError(f"{metric} needs the run's text data set (evaluate a run directory, or give --real NAME)")
    return other_split(cfg, split, metric)


def fake_sentences(inputs: EvalInputs, metric: str) -> list[list[str]]:
    fake = _text(inputs.fake, metric)
    return fake.kind.sentences(fake.data)


@register_metric("bleu", primary="bleu4", higher_is_better=True, uses_features=False)
def _bleu(inputs: EvalInputs) -> dict[str, Any]:
    """BLEU-2..5 of the generated sentences, each against all sentences of the test split (Texygen)."""
    hypotheses = fake_sentences(inputs, "bleu")
    references = split_of(inputs.real, "test", "bleu").info["sentences"]
    return {f"bleu{n}": v for n, v in bleu(hypotheses, references, ORDERS).items()}


@register_metric("self-bleu", primary="self_bleu4", higher_is_better=False, needs_real=False, uses_features=False,
                 aliases=("selfbleu",))
def _self_bleu(inputs: EvalInputs) -> dict[str, Any]:
    """Self-BLEU-2..5: each generated sentence against all the others (lower: more diverse)."""
    return {f"self_bleu{n}": v for n, v in self_bleu(fake_sentences(inputs, "self-bleu"), ORDERS).items()}


@register_metric("copy", primary="copy_rate", higher_is_better=False, uses_features=False, aliases=("copy-rate",))
def _copy(inputs: EvalInputs) -> dict[str, Any]:
    """Share of generated sentences that are training sentences, word for word."""
    training = split_of(inputs.real, "train", "copy").info["sentences"]
    return {"copy_rate": copy_rate(fake_sentences(inputs, "copy"), training)}


@register_metric("nll", primary="nll_test", higher_is_better=False, uses_features=False, aliases=("nll-test",))
@torch.no_grad()
def _nll(inputs: EvalInputs) -> dict[str, Any]:
    """Negative log-likelihood of the test sentences under the generator, in nats per word (``<eos>`` counted;
    test words outside the training vocabulary are left out, ``nll_unknown`` says how many)."""
    generator = _text(inputs.fake, "nll").info.get("generator")
    if generator is None or not hasattr(generator, "token_nll"):
        raise UserError("nll needs a generator that defines a likelihood (a text run directory: mle, relgan, seqgan)")
    test = split_of(inputs.real, "test", "nll")
    if len(test.info["vocab"]) != generator.vocab_size:
        raise UserError(f"nll: the generator knows {generator.vocab_size} words, the data set {len(test.info['vocab'])}")
    tokens = test.data
    width = generator.output_shape[0]
    if tokens.shape[1] != width:  # a data set read with another max_length: the sentences that fit
        keep = (tokens[:, width:] == PAD).all(1) if tokens.shape[1] > width else torch.ones(len(tokens), dtype=torch.bool)
        tokens = torch.nn.functional.pad(tokens[keep][:, :width], (0, max(0, width - tokens.shape[1])))
    device = next(generator.parameters()).device
    total, words, unknown = 0.0, 0.0, float((tokens == UNK).sum())
    with eval_mode(generator):
        for i in range(0, len(tokens), NLL_BATCH):
            nll, count = generator.token_nll(tokens[i : i + NLL_BATCH].to(device), known_only=True)
            total, words = total + float(nll.sum()), words + float(count.sum())
    return {"nll_test": total / words, "nll_unknown": unknown / (words + unknown)}
