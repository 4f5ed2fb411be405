"""BLEU and Self-BLEU of generated sentences, as the text-GAN literature (Texygen) computes them.

Texygen scores every generated sentence against *all* test sentences as its references with
``nltk``'s ``sentence_bleu`` (uniform weights over 1..n-grams, smoothing method 1), then
averages over the generated set. Self-BLEU scores every generated sentence against all the
*other* generated sentences: high Self-BLEU means the generator repeats itself.

Called naively that is ``hypotheses x references`` n-gram comparisons (10^8 for 1,000
sentences against 10,000). Two facts make it linear instead, with results equal to nltk's:

* the clipped count of an n-gram is its count in the hypothesis capped by its *largest*
  count in any one reference, and that maximum does not depend on the hypothesis: build
  one table ``n-gram -> max count over references`` once;
* the brevity penalty needs only the reference length closest to the hypothesis length
  (ties to the shorter), which a sorted list of the distinct lengths answers.

For Self-BLEU, "all references but the hypothesis itself" keeps the two largest counts of
each n-gram and which sentence holds the largest, and the reference lengths as a multiset.

For one hypothesis ``h`` with modified precisions ``p_k = clipped_k / max(1, total_k)``
(a zero numerator becomes ``0.1 / total_k``: method 1), closest reference length ``r`` and
length ``c``: ``BLEU-n = BP * exp(sum_k (1/n) log p_k)`` with ``BP = 1`` if ``c > r``,
``exp(1 - r/c)`` otherwise (0 for an empty hypothesis); a hypothesis without a single
matching unigram scores 0.
"""

from __future__ import annotations

import bisect
import math
from collections import Counter
from typing import Iterable, Sequence

Sentence = Sequence[str]

#: nltk's SmoothingFunction().method1: zero n-gram matches count as this many.
EPSILON = 0.1


def ngrams(tokens: Sentence, n: int) -> Counter:
    """The n-grams of ``tokens`` with their counts."""
    return Counter(tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1))


class _References:
    """Per n-gram the largest and second-largest count over the references (and the largest's owner)."""

    def __init__(self, references: Iterable[Sentence], max_n: int) -> None:
        self.max_n = max_n
        self.top: dict[tuple[str, ...], tuple[int, int, int]] = {}  # n-gram -> (best, owner, second)
        self.lengths: Counter = Counter()
        for index, tokens in enumerate(references):
            self.lengths[len(tokens)] += 1
            for n in range(1, max_n + 1):
                for gram, count in ngrams(tokens, n).items():
                    best, owner, second = self.top.get(gram, (0, -1, 0))
                    if count > best:
                        self.top[gram] = (count, index, best)
                    elif count > second:
                        self.top[gram] = (best, owner, count)
        if not self.lengths:
            raise ValueError("BLEU needs at least one reference sentence")
        self.sorted_lengths = sorted(self.lengths)

    def max_count(self, gram: tuple[str, ...], exclude: int) -> int:
        best, owner, second = self.top.get(gram, (0, -1, 0))
        return second if owner == exclude else best

    def closest_length(self, length: int, exclude_length: int | None) -> int:
        """The reference length nearest ``length`` (ties: the shorter), leaving out one reference of ``exclude_length``."""
        lengths = self.sorted_lengths
        if exclude_length is not None and self.lengths[exclude_length] == 1:
            lengths = [x for x in lengths if x != exclude_length]  # rare: that length was the excluded sentence's alone
            if not lengths:
                raise ValueError("Self-BLEU needs at least two sentences")
        i = bisect.bisect_left(lengths, length)
        candidates = lengths[max(0, i - 1) : i + 1]
        return min(candidates, key=lambda r: (abs(r - length), r))


def _sentence_bleu(hypothesis: Sentence, refs: _References, orders: Sequence[int], exclude: int = -1,
                   exclude_length: int | None = None) -> list[float]:
    """BLEU-n of one hypothesis for every n in ``orders`` (nltk's sentence_bleu with method 1)."""
    length = len(hypothesis)
    matches, totals = [], []
    for n in range(1, refs.max_n + 1):
        counts = ngrams(hypothesis, n)
        matches.append(sum(min(c, refs.max_count(g, exclude)) for g, c in counts.items()))
        totals.append(max(1, sum(counts.values())))
    if matches[0] == 0:
        return [0.0 for _ in orders]
    r = refs.closest_length(length, exclude_length)
    penalty = 1.0 if length > r else math.exp(1 - r / length)
    logs = [math.log((m if m else EPSILON) / t) for m, t in zip(matches, totals)]
    return [penalty * math.exp(math.fsum(lg / n for lg in logs[:n])) for n in orders]


def bleu(hypotheses: Sequence[Sentence], references: Sequence[Sentence], orders: Sequence[int] = (2, 3, 4, 5)) -> dict[int, float]:
    """Mean BLEU-n of ``hypotheses`` (token lists), each against all ``references``: ``{n: score}``."""
    if not hypotheses:
        raise ValueError("BLEU needs at least one hypothesis")
    refs = _References(references, max(orders))
    scores = [_sentence_bleu(h, refs, orders) for h in hypotheses]
    return {n: math.fsum(s[i] for s in scores) / len(scores) for i, n in enumerate(orders)}


def self_bleu(sentences: Sequence[Sentence], orders: Sequence[int] = (2, 3, 4, 5)) -> dict[int, float]:
    """Mean BLEU-n of each sentence against all the others (diversity: lower is more diverse)."""
    if len(sentences) < 2:
        raise ValueError("Self-BLEU needs at least two sentences")
    refs = _References(sentences, max(orders))
    scores = [_sentence_bleu(s, refs, orders, exclude=i, exclude_length=len(s)) for i, s in enumerate(sentences)]
    return {n: math.fsum(s[i] for s in scores) / len(scores) for i, n in enumerate(orders)}


def copy_rate(sentences: Sequence[Sentence], training: Iterable[Sentence]) -> float:
    """The fraction of ``sentences`` that appear verbatim in ``training``."""
    seen = {tuple(s) for s in training}
    return sum(tuple(s) in seen for s in sentences) / max(1, len(sentences))
