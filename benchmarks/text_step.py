"""Adversarial step time of the text GANs: the shipped networks against the earlier code, interleaved.

The earlier code (kept here as the baseline, not in the library) fed the discriminator word ids
as dense one-hots ``[N, T, V]`` times its embedding matrix, and completed SeqGAN's rollouts with
every row in the batch until the longest sentence ended. The library now looks ids up
(``F.embedding``: the same numbers) and drops a row from the rollout batch at its ``<eos>``.
Both variants share one MLE-pre-trained generator (realistic sentence lengths), start from the
same weights and random state, and alternate over rounds so machine noise hits them alike; the
script also checks that both variants' rewards and samples agree.

    python benchmarks/text_step.py [relgan-coco|seqgan-coco] --set data.root=DIR [--pretrain 300] [--steps 3] [--rounds 3] [--threads 2]
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import statistics
import tempfile
import time
from typing import Iterator

import torch
import torch.nn.functional as F
from torch import nn

from ganforge.config import parse_override
from ganforge.models.textgan import BOS, EOS, PAD, LanguageModel, TextCNN
from ganforge.training.trainer import Trainer
from ganforge.validate import load_config


def one_hot_forward(self: TextCNN, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
    """The earlier TextCNN.forward: ids become dense one-hots before the embedding product."""
    one_hot = F.one_hot(x.long(), self.vocab_size).float() if x.dim() == 2 else x.float()
    h = (one_hot @ self.embed).transpose(1, 2)
    pooled = torch.cat([F.relu(conv(h)).amax(dim=2) for conv in self.convs], dim=1)
    return self.head(self.dropout(self.highway(pooled)))[:, 0]


def full_batch_complete(self: LanguageModel, words: torch.Tensor, keep: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """The earlier LanguageModel.complete: all rows step on until every sentence has ended."""
    n, length = words.shape
    u = torch.special.ndtr(z.float())
    positions = torch.arange(length, device=words.device)
    out = torch.where(positions < keep[:, None], words, torch.full_like(words, PAD))
    done = ((out == EOS) & (positions < keep[:, None])).any(1) | (keep >= length)
    inputs = self.embed(torch.cat([torch.full_like(words[:, :1], BOS), out[:, :-1]], dim=1))
    packed = nn.utils.rnn.pack_padded_sequence(inputs, (keep + 1).clamp_max(length).cpu(), batch_first=True,
                                               enforce_sorted=False)
    _, state = self.lstm(packed)
    logits, position, rows = self.out(state[0][-1]), keep.clone(), torch.arange(n, device=words.device)
    while not done.all():
        p = position.clamp_max(length - 1)
        word = self._draw(logits, u[rows, p])
        word = torch.where(p == length - 1, torch.full_like(word, EOS), word)
        word = torch.where(done, torch.full_like(word, PAD), word)
        out[rows, p] = torch.where(done, out[rows, p], word)
        done = done | (word == EOS)
        position = position + 1
        if done.all():
            break
        hidden, state = self.lstm(self.embed(word)[:, None], state)
        logits = self.out(hidden[:, 0])
    return out


@contextlib.contextmanager
def earlier_code() -> Iterator[None]:
    saved = TextCNN.forward, LanguageModel.complete
    TextCNN.forward, LanguageModel.complete = one_hot_forward, full_batch_complete
    try:
        yield
    finally:
        TextCNN.forward, LanguageModel.complete = saved


VARIANTS = {"earlier code (baseline)": earlier_code, "as shipped": contextlib.nullcontext}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("preset", nargs="?", default="seqgan-coco")
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="config overrides (data.root=DIR)")
    parser.add_argument("--pretrain", type=int, default=300, help="MLE steps before timing (sentence lengths)")
    parser.add_argument("--steps", type=int, default=3, help="timed adversarial steps per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    overrides = {**dict(map(parse_override, args.set)), "train.progress": False,
                 "recipe_options.pretrain_steps": args.pretrain, "train.steps": args.pretrain + 10**6}
    if args.preset.startswith("seqgan"):
        overrides["recipe_options.d_pretrain_steps"] = 0

    with tempfile.TemporaryDirectory() as tmp:
        first = Trainer(load_config(args.preset, overrides), f"{tmp}/pre")
        for step in range(args.pretrain):
            first.recipe.train_step(first.loader, step)
        trainers = {}
        for i, name in enumerate(VARIANTS):
            trainers[name] = Trainer(load_config(args.preset, overrides), f"{tmp}/{i}")
            for key, net in first.recipe.networks.items():
                trainers[name].recipe.networks[key].load_state_dict(net.state_dict())
            trainers[name].recipe.rngs = copy.deepcopy(first.recipe.rngs)

        if args.preset.startswith("seqgan"):  # the two variants compute the same rewards from the same state
            checks = {}
            for name, trainer in trainers.items():
                with VARIANTS[name]():
                    recipe = trainer.recipe
                    rngs = copy.deepcopy(recipe.rngs)
                    words = recipe.sample(64)
                    checks[name] = (words, recipe.rewards(words))
                    recipe.rngs = rngs
            (w0, q0), (w1, q1) = checks.values()
            print(f"same samples: {torch.equal(w0, w1)}, largest reward difference: {(q0 - q1).abs().max().item():.2e}, "
                  f"mean sentence length: {(w0 != PAD).sum(1).float().mean().item():.1f} words")

        times: dict[str, list[float]] = {name: [] for name in VARIANTS}
        step = args.pretrain
        for _ in range(args.rounds):
            for name, trainer in trainers.items():
                with VARIANTS[name]():
                    start = time.perf_counter()
                    for i in range(args.steps):
                        trainer.recipe.train_step(trainer.loader, step + i)
                    times[name].append((time.perf_counter() - start) / args.steps)
            step += args.steps

    base = statistics.median(times["earlier code (baseline)"])
    print(f"preset {args.preset}, adversarial steps after {args.pretrain} MLE steps, {args.threads} threads, "
          f"torch {torch.__version__}")
    print(f"{'variant':<26} {'s/step':>8} {'vs baseline':>12}")
    for name, values in times.items():
        t = statistics.median(values)
        print(f"{name:<26} {t:8.2f} {base / t:11.2f}x")


if __name__ == "__main__":
    main()
