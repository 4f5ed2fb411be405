"""BLEU, Self-BLEU and the copy rate equal nltk's sentence_bleu (Texygen's protocol) on the same inputs."""

from __future__ import annotations

import math
import random

import pytest

from ganforge.metrics.bleu import bleu, copy_rate, self_bleu

nltk_bleu = pytest.importorskip("nltk.translate.bleu_score", reason="nltk is the reference (pip install -e '.[test]')")

WORDS = "a the man woman dog cat on in with sits runs red blue big small table street near".split()


def sentences(n: int, seed: int) -> list[list[str]]:
    """Random sentences over a small vocabulary (so n-grams repeat), lengths 0-14 (empty and short ones too)."""
    rng = random.Random(seed)
    return [[rng.choice(WORDS[: rng.randint(3, len(WORDS))]) for _ in range(rng.choice([0, 1, 2, *range(3, 15)]))]
            for _ in range(n)]


def reference_bleu(hypotheses, references_for, n: int) -> float:
    smooth = nltk_bleu.SmoothingFunction().method1
    return math.fsum(nltk_bleu.sentence_bleu(references_for(i), h, weights=(1 / n,) * n, smoothing_function=smooth)
                     for i, h in enumerate(hypotheses)) / len(hypotheses)


@pytest.mark.parametrize("seed", [0, 1])
def test_bleu_equals_nltk_sentence_bleu_against_all_references(seed):
    hypotheses, references = sentences(60, seed), [s for s in sentences(300, seed + 100) if s]
    ours = bleu(hypotheses, references, orders=(1, 2, 3, 4, 5))
    for n, value in ours.items():
        assert value == pytest.approx(reference_bleu(hypotheses, lambda i: references, n), rel=1e-12, abs=1e-15)
    assert 0 < ours[5] < ours[4] < ours[3] < ours[2] < 1  # a real spread of values, not all zeros or ones


def test_self_bleu_scores_each_sentence_against_all_the_others():
    generated = [s for s in sentences(80, 7) if s]
    generated += [generated[0], generated[1][:3]]  # an exact repeat and a prefix: the exclusion must be per sentence
    ours = self_bleu(generated, orders=(2, 3, 4))
    for n, value in ours.items():
        others = lambda i: generated[:i] + generated[i + 1 :]  # noqa: E731
        assert value == pytest.approx(reference_bleu(generated, others, n), rel=1e-12)


def test_repetition_raises_self_bleu_and_matching_the_references_raises_bleu():
    references = sentences(200, 3)
    diverse = [s for s in sentences(50, 4) if len(s) >= 4]  # BLEU-4 of a shorter sentence is smoothed below 1
    assert self_bleu([diverse[0]] * 10)[4] == pytest.approx(1.0)
    assert self_bleu(diverse)[4] < 0.5
    assert bleu([r for r in references[:50] if len(r) >= 4], references)[4] == pytest.approx(1.0)


def test_copy_rate_counts_verbatim_training_sentences():
    training = [["a", "dog"], ["the", "cat", "sits"]]
    assert copy_rate([["a", "dog"], ["a", "cat"], ["the", "cat", "sits"], ["a", "dog"]], training) == 0.75


def test_bleu_needs_sentences():
    with pytest.raises(ValueError, match="reference"):
        bleu([["a"]], [])
    with pytest.raises(ValueError, match="two sentences"):
        self_bleu([["a"]])
