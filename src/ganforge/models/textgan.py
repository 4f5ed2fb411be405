"""Text GANs' networks: an LSTM language model as generator and a CNN over (soft) one-hots as discriminator.

One generator serves the three text recipes (``mle``, ``relgan``, ``seqgan``), so that they
differ only in how it is trained. It reads ``<bos>`` then its own previous word, and at step
``t`` gives logits ``o_t`` over the vocabulary:

* ``logits(tokens)``: teacher forcing, ``log p(x) = sum_t log softmax(o_t)[x_t]`` (MLE, NLL);
* ``forward(z)`` in eval mode: sampling. The latent ``z [N, T]`` is the randomness: word ``t``
  is the inverse CDF of ``softmax(o_t / temperature)`` at ``u_t = Phi(z_t)``, so the same
  latents give the same sentence and every sampling path of ganforge (seeds, ``generate``,
  the serve API) works unchanged;
* ``relaxed(...)`` (and ``forward`` in train mode): RelGAN's Gumbel-softmax,
  ``y_t = softmax(beta (o_t + g_t))`` with Gumbel noise ``g_t``; the next input is the hard
  ``argmax`` word, the soft ``y_t`` carries D's gradient back to the generator.

After ``<eos>`` every position is ``<pad>``; the last position is ``<eos>`` when nothing ended
earlier. The discriminator (Kim's sentence CNN, as in SeqGAN and RelGAN) embeds one-hots
with a matrix product, so soft one-hots from the relaxation and hard words read alike.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError
from . import MODELS, smallest_config
from .base import Discriminator, Generator, configurable

#: The special ids of :mod:`ganforge.text.vocab` (models do not import the text package).
PAD, BOS, EOS, UNK = 0, 1, 2, 3


@configurable
class LanguageModel(Generator):
    """An LSTM language model over ``vocab_size`` words emitting sentences of ``length`` ids."""

    def __init__(self, length: int, vocab_size: int, embed_dim: int = 64, hidden_dim: int = 128, num_layers: int = 1,
                 dropout: float = 0.0) -> None:
        super().__init__()
        self.output_shape = (length,)
        self.latent_dim, self.num_classes = length, 0
        self.vocab_size = vocab_size
        self.embed = nn.Embedding(vocab_size, embed_dim)
        self.lstm = nn.LSTM(embed_dim, hidden_dim, num_layers=num_layers, batch_first=True)
        self.out = nn.Linear(hidden_dim, vocab_size)
        self.drop = nn.Dropout(dropout)  # on the LSTM's outputs under teacher forcing (MLE): against memorising
        self.temperature = 1.0  # sampling temperature (ganforge sample --temperature); not a weight
        self.register_buffer("beta", torch.tensor(1.0))  # RelGAN's inverse temperature in train mode (annealed)

    # ------------------------------------------------------------------ likelihood

    def logits(self, tokens: torch.Tensor) -> torch.Tensor:
        """Teacher forcing: logits ``[N, T, V]`` of word ``t`` given ``<bos>`` and the words before it."""
        inputs = torch.cat([torch.full_like(tokens[:, :1], BOS), tokens[:, :-1]], dim=1)
        hidden, _ = self.lstm(self.drop(self.embed(inputs)))
        return self.out(self.drop(hidden))

    def token_log_probs(self, tokens: torch.Tensor) -> torch.Tensor:
        """``log p(x_t | x_<t)`` of every position ``[N, T]`` under teacher forcing (padding included: mask it)."""
        return -F.cross_entropy(self.logits(tokens).transpose(1, 2), tokens, reduction="none")

    def token_nll(self, tokens: torch.Tensor, known_only: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """Per sentence: the summed negative log-likelihood of its words and ``<eos>``, and how many there are.

        ``known_only`` leaves ``<unk>`` out (test words the training vocabulary lacks: the model never saw them).
        """
        mask = ((tokens != PAD) & ((tokens != UNK) if known_only else True)).float()
        return -(self.token_log_probs(tokens) * mask).sum(1), mask.sum(1)

    # ------------------------------------------------------------------ sampling

    def _step(self, words: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor] | None):
        hidden, state = self.lstm(self.embed(words)[:, None], state)
        return self.out(hidden[:, 0]), state

    def _finish(self, words: torch.Tensor, t: int, done: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Words after ``<eos>`` become ``<pad>``; the last step ends every open sentence."""
        if t == self.output_shape[0] - 1:
            words = torch.where(done, words, torch.full_like(words, EOS))
        words = torch.where(done, torch.full_like(words, PAD), words)
        return words, done | (words == EOS)

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        if self.training:
            return self.relaxed(len(z), self.beta)[0]
        return self.sample_words(z).float()

    def sample_words(self, z: torch.Tensor) -> torch.Tensor:
        """Ids ``[N, T]`` drawn by inverse CDF at ``Phi(z)`` (temperature :attr:`temperature`)."""
        n = len(z)
        return self.complete(torch.zeros(n, self.output_shape[0], dtype=torch.long, device=z.device),
                             torch.zeros(n, dtype=torch.long, device=z.device), z)

    def _draw(self, logits: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        """The inverse CDF of ``softmax(logits / temperature)`` at ``u [N]``."""
        cdf = torch.softmax(logits.float() / self.temperature, dim=-1).cumsum(-1)
        return torch.searchsorted(cdf, (u[:, None] * cdf[:, -1:]).contiguous())[:, 0].clamp_max(self.vocab_size - 1)

    def complete(self, words: torch.Tensor, keep: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """Keep the first ``keep[i]`` words of row ``i`` of ``words [N, T]`` and draw the rest at ``Phi(z)``.

        ``keep = 0`` samples whole sentences; SeqGAN's rollouts complete prefixes. The LSTM reads
        every open prefix in one packed pass, then the open rows sample on together (each at its
        own position); a row leaves the batch at its ``<eos>``, so the cost is the words drawn,
        not rows x the longest sentence.
        """
        length = words.shape[1]
        u = torch.special.ndtr(z.float())  # Phi: standard normal -> uniform (0, 1)
        keep = keep.to(words.device)
        positions = torch.arange(length, device=words.device)
        out = torch.where(positions < keep[:, None], words, torch.full_like(words, PAD))
        done = ((out == EOS) & (positions < keep[:, None])).any(1) | (keep >= length)
        rows = (~done).nonzero()[:, 0]  # the open sentences, by row of out
        if not len(rows):
            return out
        # read <bos> and the kept words: the last output predicts word keep[i]
        inputs = self.embed(torch.cat([torch.full_like(words[rows, :1], BOS), out[rows, :-1]], dim=1))
        packed = nn.utils.rnn.pack_padded_sequence(inputs, (keep[rows] + 1).cpu(), batch_first=True, enforce_sorted=False)
        _, state = self.lstm(packed)
        logits = self.out(state[0][-1])
        position = keep[rows]
        while True:
            word = self._draw(logits, u[rows, position])
            word = torch.where(position == length - 1, torch.full_like(word, EOS), word)  # the last position ends it
            out[rows, position] = word
            open_ = word != EOS
            if not open_.any():
                return out
            rows, position, word = rows[open_], position[open_] + 1, word[open_]
            state = (state[0][:, open_], state[1][:, open_])
            hidden, state = self.lstm(self.embed(word)[:, None], state)
            logits = self.out(hidden[:, 0])

    def relaxed(self, n: int, beta: torch.Tensor | float, generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """RelGAN's Gumbel-softmax samples: soft one-hots ``[n, T, V]`` (with gradient) and their hard ids ``[n, T]``."""
        length, device = self.output_shape[0], self.out.weight.device
        words = torch.full((n,), BOS, dtype=torch.long, device=device)
        done = torch.zeros(n, dtype=torch.bool, device=device)
        pad = F.one_hot(torch.tensor(PAD, device=device), self.vocab_size).float()
        soft, hard, state = [], [], None
        for t in range(length):
            logits, state = self._step(words, state)
            u = torch.rand(logits.shape, generator=generator, device=device).clamp_(1e-10, 1 - 1e-10)
            gumbel = u.log_().neg_().log_().neg_()  # -log(-log u), in place
            y = torch.softmax(beta * (logits.float() + gumbel), dim=-1)
            words, done_next = self._finish(y.argmax(-1), t, done)
            if t == length - 1:  # forced <eos>: a hard one-hot where the relaxation chose another word
                y = torch.where((words == EOS)[:, None] & (y.argmax(-1) != EOS)[:, None],
                                F.one_hot(words, self.vocab_size).float(), y)
            soft.append(torch.where(done[:, None], pad, y))
            hard.append(words)
            done = done_next
            if done.all():  # every sentence has ended: the rest is padding
                break
        rest = length - len(soft)
        soft_out, hard_out = torch.stack(soft, dim=1), torch.stack(hard, dim=1)
        if rest:
            soft_out = torch.cat([soft_out, pad.expand(n, rest, -1)], dim=1)
            hard_out = F.pad(hard_out, (0, rest), value=PAD)
        return soft_out, hard_out

    def decode(self, outputs: torch.Tensor) -> torch.Tensor:
        """Soft one-hots ``[N, T, V]`` (train mode) -> their ids; ids pass through."""
        return outputs.argmax(-1).float() if outputs.dim() == 3 else outputs


class Highway(nn.Module):
    """``t * relu(W x) + (1 - t) * x`` with a learned gate ``t = sigmoid(W_t x)`` (SeqGAN's discriminator)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.transform, self.gate = nn.Linear(dim, dim), nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate = torch.sigmoid(self.gate(x))
        return gate * F.relu(self.transform(x)) + (1 - gate) * x


@configurable
class TextCNN(Discriminator):
    """Sentences (ids ``[N, T]`` or soft one-hots ``[N, T, V]``) -> embedded -> convs of several widths ->
    max over time -> highway -> dropout -> logit ``[N]``."""

    def __init__(self, length: int, vocab_size: int, embed_dim: int = 64, filters: int = 64,
                 widths: tuple[int, ...] | list[int] = (2, 3, 4, 5), dropout: float = 0.25) -> None:
        super().__init__()
        self.vocab_size = vocab_size
        self.embed = nn.Parameter(torch.randn(vocab_size, embed_dim) * 0.1)  # one-hots @ embed: soft inputs too
        self.convs = nn.ModuleList(nn.Conv1d(embed_dim, filters, w) for w in widths if w <= length)
        features = filters * len(self.convs)
        self.highway, self.dropout, self.head = Highway(features), nn.Dropout(dropout), nn.Linear(features, 1)

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        # ids: a row lookup, the same numbers as one_hot(ids) @ embed without the [N, T, V] one-hots
        h = (F.embedding(x.long(), self.embed) if x.dim() == 2 else x.float() @ self.embed).transpose(1, 2)  # [N, E, T]
        pooled = torch.cat([F.relu(conv(h)).amax(dim=2) for conv in self.convs], dim=1)
        return self.head(self.dropout(self.highway(pooled)))[:, 0]


@MODELS.register("textgan", help="text: an LSTM language model (mle, relgan, seqgan recipes) and a CNN discriminator over one-hots")
@smallest_config(((6,), {"embed_dim": 4, "hidden_dim": 8, "d_filters": 4}))
def build_textgan(
    data_shape: tuple[int, ...],
    num_classes: int = 0,
    vocab_size: int = 16,
    *,
    embed_dim: int = 64,
    hidden_dim: int = 128,
    num_layers: int = 1,
    dropout: float = 0.0,
    d_embed_dim: int = 64,
    d_filters: int = 64,
    d_dropout: float = 0.25,
) -> tuple[LanguageModel, TextCNN]:
    """``data_shape = (T,)`` word ids per sentence; ``vocab_size`` comes from the data set (the recipe passes it)."""
    if len(data_shape) != 1:
        raise ConfigError(f"model 'textgan' generates sentences of word ids [T], not samples of shape {tuple(data_shape)}")
    if num_classes:
        raise ConfigError("model 'textgan' is unconditional (model.conditional=false)")
    length = int(data_shape[0])
    generator = LanguageModel(length, vocab_size, embed_dim=embed_dim, hidden_dim=hidden_dim, num_layers=num_layers,
                              dropout=dropout)
    discriminator = TextCNN(length, vocab_size, embed_dim=d_embed_dim, filters=d_filters, dropout=d_dropout)
    return generator, discriminator


build_textgan.unconditional = True  # type: ignore[attr-defined]  # models.takes_labels('textgan') is False
