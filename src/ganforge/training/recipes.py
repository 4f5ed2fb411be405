"""Recipes: how a family of methods turns batches into parameter updates.

A recipe builds its networks and optimizers from the config and implements
``train_step``; the :class:`~ganforge.training.trainer.Trainer` owns everything around it
(loop, EMA, checkpoints, logging, samples). New methods (unrolled GANs, pix2pix, ...) are
new registered recipes, not branches in the trainer.

What the trainer needs to know about the generator's inputs and outputs also comes from
the recipe, through hooks with latent-GAN defaults (image-to-image recipes override them,
see :mod:`ganforge.training.translation`): :meth:`Recipe.fixed_inputs` (the fixed batch of
the sample grids), :meth:`Recipe.render_samples` (the grid), :meth:`Recipe.calibration_inputs`
(batches that re-estimate BatchNorm statistics of the exported generator),
:meth:`Recipe.generator_meta` (saved beside its weights) and :attr:`Recipe.final_grid`.

How ``ganforge eval RUN_DIR`` scores a run is not a recipe hook: the evaluation package
keeps a registry from recipe names to run evaluators
(:data:`ganforge.evaluation.RUN_EVALUATORS`; ``pix2pix`` and ``cyclegan`` runs are scored on
their test pairs, ``srgan`` runs on benchmark folders, all others by sampling the generator).
"""

from __future__ import annotations

import copy
import dataclasses
import zlib
from typing import TYPE_CHECKING, Any, Callable, ClassVar, Iterator

import torch
from torch import nn

from .. import augment, distributed, losses, models
from .. import modality as modalities
from ..config import Config, OptimConfig, build_dataclass, ranged
from ..data import Dataset
from ..distributed import DistInfo
from ..errors import ConfigError
from ..layers.sync_batchnorm import convert_sync_batchnorm
from ..registry import Registry

if TYPE_CHECKING:
    from PIL import Image

RECIPES: Registry = Registry("recipe")

#: train.precision -> the autocast dtype of the forward passes (None: float32 throughout).
AMP_DTYPES: dict[str, torch.dtype | None] = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}

Batch = dict[str, torch.Tensor]


def make_optimizer(cfg: OptimConfig, params: Any, lr: float, betas: list[float], device: torch.device) -> torch.optim.Optimizer:
    """Adam or RMSprop; the fused kernel on CUDA, the multi-tensor (foreach) one elsewhere."""
    fast = {"fused": True} if device.type == "cuda" else {"foreach": True}
    if cfg.name == "adam":
        return torch.optim.Adam(params, lr=lr, betas=tuple(betas), weight_decay=cfg.weight_decay, **fast)
    return torch.optim.RMSprop(params, lr=lr, weight_decay=cfg.weight_decay, **fast)


class Recipe:
    """Base class: networks, optimizers, random streams and one training step.

    Attributes:
        networks: every trainable module by name (saved in checkpoints).
        optimizers: every optimizer by name (saved in checkpoints).
        rngs: named ``torch.Generator`` random streams whose state is checkpointed.
    """

    networks: dict[str, nn.Module]
    optimizers: dict[str, torch.optim.Optimizer]
    dist: DistInfo = DistInfo()  # set by distribute() in a multi-process run
    #: Random streams every process draws identically (for the whole global batch, see draw());
    #: the others (augmentations, penalties) are split per process by split_streams().
    SHARED_STREAMS: ClassVar[tuple[str, ...]] = ("noise", "labels")
    #: What the generator does: ``generation`` (latents to samples), ``translation``,
    #: ``super-resolution``; recorded in the exported generator's metadata by non-GAN recipes.
    task: ClassVar[str] = "generation"
    #: A file of the run directory that also receives the last sample grid (None: none).
    final_grid: ClassVar[str | None] = None
    #: Whether the recipe trains with ``train.privacy`` (DP-SGD of the critic, training/privacy.py).
    supports_privacy: ClassVar[bool] = False

    @dataclasses.dataclass
    class Options:
        """The recipe's ``recipe_options`` (none for the base recipe)."""

    @classmethod
    def check_options(cls, options: dict[str, Any]) -> Any:
        """``recipe_options`` checked and coerced into :attr:`Options` (unknown keys are errors).

        Called by :func:`ganforge.validate.check_config`; subclasses add checks of values.
        """
        return build_dataclass(cls.Options, options or {}, "recipe_options")

    def __init__(self, config: Config, dataset: Dataset, device: torch.device) -> None:
        """``config`` is checked (:func:`ganforge.validate.check_config`): its options are trusted."""
        self.config, self.dataset, self.device = config, dataset, device
        self.options = self.Options(**config.recipe_options)
        if config.train.privacy.epsilon is not None and not self.supports_privacy:
            raise ConfigError(f"recipe={config.recipe} does not train privately; train.privacy works with recipe=ctgan")
        self.rngs: dict[str, torch.Generator] = {}
        self.amp_dtype = AMP_DTYPES[config.train.precision]
        if self.amp_dtype is torch.float16 and device.type != "cuda":
            raise ConfigError("train.precision=fp16 needs a CUDA device (CPUs have no fast fp16); use bf16 or fp32")
        # fp16 gradients underflow without loss scaling: one GradScaler per optimizer.
        self.scalers: dict[str, torch.amp.GradScaler] = {}
        # NHWC for every 4-D convolution, whatever the modality: spectrogram and frame models
        # gain as images do (benchmarks/step_options.py); 2-, 3- and 5-D tensors keep their layout.
        self.memory_format = torch.channels_last if config.train.channels_last else torch.contiguous_format

    # ------------------------------------------------------------------ multi-process

    def distribute(self, info: DistInfo, *, sync_batchnorm: bool = False) -> None:
        """Join a multi-process run: optional global-batch BatchNorm, rank 0's weights everywhere."""
        self.dist = info
        for net in self.networks.values():
            if sync_batchnorm:
                convert_sync_batchnorm(net)
            distributed.broadcast_state(net)

    def split_streams(self, step: int) -> None:
        """Give each process its own augmentation/penalty stream, derived from (seed, rank, step)."""
        for name, g in self.rngs.items():
            if name not in self.SHARED_STREAMS:
                mixed = self.config.train.seed * 1_000_003 + zlib.crc32(name.encode()) * 7919 + self.dist.rank * 104_729 + step
                g.manual_seed(mixed % 2**63)

    def draw(self, fn: Callable[[int], torch.Tensor], n: int) -> torch.Tensor:
        """``fn(n)`` for this process: ``fn`` draws for the global batch, this process keeps its slice.

        In a single process this is just ``fn(n)``; with ``W`` processes each calls
        ``fn(n * W)`` on the same shared stream and keeps rows ``rank * n ... (rank + 1) * n``,
        so the global batch holds the latents a single process would have drawn.
        """
        if not self.dist.enabled:
            return fn(n)
        return fn(n * self.dist.world_size)[self.dist.rank * n : (self.dist.rank + 1) * n]

    def latents(self, n: int) -> torch.Tensor:
        """``n`` latents for this process from the shared ``noise`` stream (see :meth:`draw`)."""
        return self.draw(lambda m: self.generator.sample_latents(m, self.rngs["noise"]), n)

    def optimize(self, name: str, loss: torch.Tensor, module: nn.Module, max_norm: float | None = None) -> None:
        """Backward ``loss``, average ``module``'s gradients over processes, step optimizer ``name``.

        ``max_norm`` clips the gradients' global norm before the step (on the unscaled ones).
        With fp16 the loss is scaled before the backward pass and the step is skipped when
        the unscaled gradients are not finite (the scale then shrinks), as GradScaler does.
        """
        opt = self.optimizers[name]
        if self.amp_dtype is not torch.float16:
            loss.backward()
            self.average_gradients(module)
            if max_norm is not None:
                nn.utils.clip_grad_norm_(module.parameters(), max_norm)
            opt.step()
            return
        scaler = self.scalers.setdefault(name, torch.amp.GradScaler(self.device.type))
        scaler.scale(loss).backward()
        self.average_gradients(module)
        if max_norm is not None:
            scaler.unscale_(opt)
            nn.utils.clip_grad_norm_(module.parameters(), max_norm)
        scaler.step(opt)
        scaler.update()

    def average_gradients(self, module: nn.Module) -> None:
        """Average ``module``'s gradients over the processes (before the optimizer step)."""
        if self.dist.enabled:
            distributed.average_gradients(module, self.dist.world_size)

    def autocast(self) -> torch.autocast:
        """Mixed precision for forward passes (backward runs outside, as autocast advises)."""
        return torch.autocast(self.device.type, dtype=self.amp_dtype or torch.bfloat16, enabled=self.amp_dtype is not None)

    def place(self, module: nn.Module) -> nn.Module:
        """Move a network to the device, its 4-D (2-D convolution) weights to the memory format the recipe trains in."""
        module = module.to(self.device)
        for param in module.parameters():
            if param.dim() == 4:  # Module.to(memory_format=...) would also try 5-D weights, and fail on them
                param.data = param.data.contiguous(memory_format=self.memory_format)
        return module

    def formatted(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` in the recipe's memory format where it is a 4-D batch; other tensors as they are."""
        return x.contiguous(memory_format=self.memory_format) if x.dim() == 4 else x

    @property
    def generator(self) -> models.Generator:
        """The network that is averaged (EMA), sampled and exported."""
        return self.networks["generator"]  # type: ignore[return-value]

    # ------------------------------------------------------------------ trainer hooks

    def fixed_inputs(self, n: int) -> Batch:
        """The fixed batch that every sample grid shows (so grids are comparable over steps).

        Latent recipes: ``{"z": [n, latent_dim], "label": [n]}`` (labels cycle through the
        classes, conditional generators only), from seed ``train.seed + 2``; at least 1,024
        points for vector data (a scatter plot). Called once, at the trainer's start.
        """
        g = self.generator
        n = max(n, modalities.get(self.dataset.modality).min_preview)
        rng = torch.Generator().manual_seed(self.config.train.seed + 2)
        fixed = {"z": torch.randn(n, g.latent_dim, generator=rng).to(self.device)}
        if g.num_classes:
            fixed["label"] = (torch.arange(n) % g.num_classes).to(self.device)
        return fixed

    def render_samples(self, generator: nn.Module, fixed: Batch) -> "Image.Image":
        """The sample grid of ``generator`` (the exported copy, in eval mode) on ``fixed``."""
        return self.draw_samples(generator, self.preview_outputs(generator, fixed))

    def preview_outputs(self, generator: nn.Module, fixed: Batch) -> torch.Tensor:
        """What ``generator`` makes of the fixed inputs, decoded (model range), on the CPU."""
        return generator.decode(generator(fixed["z"], fixed.get("label"))).float().cpu()

    def draw_samples(self, generator: nn.Module, samples: torch.Tensor) -> "Image.Image":
        """The modality's preview picture of :meth:`preview_outputs`."""
        preview = modalities.of(self.dataset).preview
        return preview(samples, nrow=generator.num_classes or None, reference=self.dataset.data[:2000])

    def render_previews(self, generator: nn.Module, fixed: Batch,
                        metadata: dict[str, str]) -> tuple["Image.Image", tuple[str, bytes] | None]:
        """The sample grid and, for a modality a person plays (its ``playable`` media: audio), the same
        samples as one file ``(suffix, bytes)`` with ``metadata`` as provenance; None for the others.

        The generator runs once for both. Recipes that draw their own grids (translation) only
        override :meth:`render_samples`: their modality has nothing to play.
        """
        kind = modalities.of(self.dataset)
        if kind.playable is None:
            return self.render_samples(generator, fixed), None
        samples = self.preview_outputs(generator, fixed)
        return self.draw_samples(generator, samples), (kind.playable.suffix, kind.encode_playable(samples, metadata))

    def calibration_inputs(self, batch_size: int, count: int = 8) -> list[tuple[torch.Tensor | None, ...]]:
        """``count`` argument tuples for ``generator(*args)``, from seed ``train.seed + 3``.

        :func:`~ganforge.training.ema.standing_stats` runs the exported generator on them to
        re-estimate its BatchNorm statistics (a no-op for networks without BatchNorm).
        """
        g = self.generator
        rng = torch.Generator().manual_seed(self.config.train.seed + 3)
        batches: list[tuple[torch.Tensor | None, ...]] = []
        for _ in range(count):
            z = torch.randn(batch_size, g.latent_dim, generator=rng).to(self.device)
            labels = torch.randint(g.num_classes, (len(z),), generator=rng).to(self.device) if g.num_classes else None
            batches.append((z, labels))
        return batches

    def generator_meta(self) -> dict[str, Any]:
        """Recipe-specific fields of the exported generator's metadata (``generator/config.json``)."""
        return {}

    def train_step(self, batches: Iterator[Batch], step: int) -> dict[str, torch.Tensor]:
        """One generator update (and its discriminator updates); returns detached losses."""
        raise NotImplementedError

    def state_dict(self) -> dict[str, Any]:
        return {
            "networks": {k: m.state_dict() for k, m in self.networks.items()},
            "optimizers": {k: o.state_dict() for k, o in self.optimizers.items()},
            "scalers": {k: s.state_dict() for k, s in self.scalers.items()},
            "extra": self.extra_state(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for k, m in self.networks.items():
            m.load_state_dict(state["networks"][k])
        for k, o in self.optimizers.items():
            o.load_state_dict(state["optimizers"][k])
        for k, scaler_state in state.get("scalers", {}).items():
            self.scalers.setdefault(k, torch.amp.GradScaler(self.device.type)).load_state_dict(scaler_state)
        self.load_extra_state(state.get("extra", {}))

    def extra_state(self) -> dict[str, Any]:
        """Recipe state beyond networks and optimizers (augmentation probability, stage, ...)."""
        return {}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        pass


#: How many real samples :func:`fit_to_data` shows the networks (SpecGAN's statistics).
FIT_SAMPLES = 4096


def fit_to_data(networks: tuple[nn.Module, ...], dataset: Dataset) -> None:
    """Let fresh networks set themselves up from real data (:meth:`~ganforge.models.Generator.fit_data`).

    A resumed run loads the same buffers from its checkpoint afterwards.
    """
    fits = [net.fit_data for net in networks if hasattr(net, "fit_data")]
    if not fits:
        return
    real = dataset.to_model(dataset.data[:FIT_SAMPLES])
    for fit in fits:
        fit(real)


@RECIPES.register("gan", help="adversarial training with n_critic D steps per G step")
class GANRecipe(Recipe):
    """Alternating updates of one generator and one discriminator.

    Each step: ``n_critic`` discriminator updates on fresh real batches, then one generator
    update. The fake batch of the *last* discriminator update is generated with autograd on
    and reused for the generator update, so a step with ``n_critic=1`` costs one generator
    forward (the discriminator sees it detached, the generator loss backpropagates through
    it after the discriminator has moved).

    Around that core, from the config: ``loss.regularizers`` (penalties added to D's loss,
    lazily every k updates), ``loss.weight_clip`` (WGAN's clipping after each D update),
    ``augment`` (the same differentiable augmentation for real and fake, ADA's ``p``
    steered by D's real logits) and ``model.pack`` (PacGAN: D judges ``m`` samples at once).
    Subclasses change one piece by overriding :meth:`d_objective`, :meth:`g_objective` or
    :meth:`make_fake`.
    """

    def __init__(self, config: Config, dataset: Dataset, device: torch.device) -> None:
        super().__init__(config, dataset, device)
        self.num_classes = self.label_classes()
        self.conditional = self.num_classes > 0
        generator, discriminator = self.build_networks(self.num_classes)
        fit_to_data((generator, discriminator), dataset)
        self.networks = {"generator": self.place(generator), "discriminator": self.place(discriminator)}
        o = config.optim
        self.optimizers = {
            "generator": make_optimizer(o, generator.parameters(), o.g_lr, o.g_betas, device),
            "discriminator": make_optimizer(o, discriminator.parameters(), o.d_lr, o.d_betas, device),
        }
        self.loss = losses.get(config.loss.name)
        self.n_critic = config.train.n_critic
        self.rngs["noise"] = torch.Generator(device=device).manual_seed(config.train.seed + 1)
        self.rngs["augment"] = torch.Generator(device=device).manual_seed(config.train.seed + 4)
        self.augment = augment.create(config.augment, self.rngs["augment"])
        if self.augment.enabled and not dataset.is_image:
            raise ConfigError(f"augment.name={config.augment.name} needs image data; '{dataset.name}' is not")
        self.regularizers = losses.resolve_regularizers(config.loss.regularizers)
        if any(r.name.startswith("bcr") for r, _ in self.regularizers) and not dataset.is_image:
            raise ConfigError("consistency regularization (bcr-*) needs image data")
        self.d_updates = 0

    def label_classes(self) -> int:
        """Classes the networks are conditioned on (0: unconditional): the data set's, with ``model.conditional``."""
        if not self.config.model.conditional:
            return 0
        if self.dataset.labels is None:
            raise ConfigError(f"model.conditional=true needs a labelled data set; '{self.dataset.name}' has no labels")
        return self.dataset.num_classes

    def build_networks(self, num_classes: int) -> tuple[nn.Module, nn.Module]:
        """The ``(generator, discriminator)`` of ``model.*``, D packed when ``model.pack > 1``."""
        m = self.config.model
        if m.pack > 1 and self.conditional:
            raise ConfigError("model.pack > 1 (PacGAN) is not supported with model.conditional=true")
        return models.create(m.name, self.dataset.shape, num_classes, pack=m.pack, **m.options)

    @property
    def discriminator(self) -> nn.Module:
        return self.networks["discriminator"]

    # ------------------------------------------------------------------ pieces

    def make_fake(self, batch: Batch, grad: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
        """A generated batch the size of ``batch`` (labels follow the real batch's)."""
        real = batch["image"]
        labels = batch.get("label") if self.conditional else None
        z = self.latents(len(real))
        with torch.set_grad_enabled(grad), self.autocast():
            return self.generator(z, labels), labels

    def score(self, x: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        """Discriminator logits ``[N]`` (float32) of an already augmented batch."""
        with self.autocast():
            return self.discriminator(self.formatted(x), labels).float()

    def d_inputs(self, batch: Batch, fake: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """What D sees: the augmented real batch and the augmented, detached fake batch."""
        return self.augment(batch["image"]), self.augment(fake.detach())

    def d_objective(self, batch: Batch, fake: torch.Tensor, labels: torch.Tensor | None) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The discriminator's loss (adversarial + due regularizers) and what to log."""
        real_in, fake_in = self.d_inputs(batch, fake)
        real_logits, fake_logits = self.score(real_in, labels), self.score(fake_in, labels)
        # The fake term averages over every negative: the generated batch, and any pairs a recipe adds.
        negative_logits = torch.cat([fake_logits, *(self.score(x, y) for x, y in self.extra_negatives(real_in, labels))])
        self.augment.observe(real_logits)
        loss = self.loss.d_loss(real_logits, negative_logits)
        logs = {"d_real": real_logits.detach().mean(), "d_fake": fake_logits.detach().mean()}
        tensors = {"real": real_in, "fake": fake_in, "real_logits": real_logits, "fake_logits": fake_logits}
        for reg, opts in self.regularizers:
            if reg.side != "d" or self.d_updates % opts["every"]:
                continue
            penalty = self.regularize(reg, opts, tensors, labels)
            loss = loss + (opts["weight"] * opts["every"]) * penalty
            logs[f"reg_{reg.name}"] = penalty.detach()
        return loss, logs

    def extra_negatives(self, real_in: torch.Tensor,
                        labels: torch.Tensor | None) -> list[tuple[torch.Tensor, torch.Tensor | None]]:
        """Batches D learns to reject besides the generated one, with their labels (none here)."""
        return []

    def regularize(self, reg: losses.Regularizer, opts: dict[str, Any], tensors: dict[str, torch.Tensor],
                   labels: torch.Tensor | None) -> torch.Tensor:
        """Evaluate one registered penalty on this update's tensors."""
        kwargs = {k: v for k, v in opts.items() if k not in losses.regularizers.GENERIC_OPTIONS}
        accepted = reg.parameters
        if "generator" in accepted:  # random draws (interpolation, noise) from a checkpointed stream
            kwargs["generator"] = self.rngs["augment"]
        if "augment" in accepted:
            kwargs["augment"] = self.consistency_augment
        return reg.fn(lambda x: self.score(x, labels), *(tensors[k] for k in reg.inputs), **kwargs)

    def consistency_augment(self, x: torch.Tensor) -> torch.Tensor:
        """bCR's transformation: a random translation (DiffAugment's, 1/8 of the size)."""
        return augment.diffaugment.translation(x, self.rngs["augment"])

    def g_objective(self, batch: Batch, fake: torch.Tensor, labels: torch.Tensor | None) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The generator's loss through the current discriminator."""
        fake_logits = self.score(self.augment(fake), labels)
        real_logits = None
        if self.loss.relativistic:
            with torch.no_grad():  # constants for G: its gradient flows through fake only
                real_logits = self.score(self.augment(batch["image"]), labels)
        return self.loss.generator_loss(fake_logits, real_logits), {}

    def after_d_update(self) -> None:
        """WGAN's weight clipping: keep every discriminator weight in [-c, c]."""
        c = self.config.loss.weight_clip
        if c is not None:
            with torch.no_grad():
                for p in self.discriminator.parameters():
                    p.clamp_(-c, c)

    def d_update(self, batch: Batch, fake: torch.Tensor, labels: torch.Tensor | None) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """One optimizer step of the discriminator."""
        opt = self.optimizers["discriminator"]
        opt.zero_grad(set_to_none=True)
        loss, logs = self.d_objective(batch, fake, labels)
        self.optimize("discriminator", loss, self.discriminator)
        self.after_d_update()
        self.d_updates += 1
        return loss, logs

    def g_update(self, batch: Batch, fake: torch.Tensor, labels: torch.Tensor | None) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """One optimizer step of the generator (D's weights need no gradients meanwhile)."""
        d, opt = self.discriminator, self.optimizers["generator"]
        d.requires_grad_(False)
        try:
            opt.zero_grad(set_to_none=True)
            loss, logs = self.g_objective(batch, fake, labels)
            self.optimize("generator", loss, self.generator)
        finally:
            d.requires_grad_(True)
        return loss, logs

    def train_step(self, batches: Iterator[Batch], step: int) -> dict[str, torch.Tensor]:
        for i in range(self.n_critic):
            batch = next(batches)
            fake, labels = self.make_fake(batch, grad=i == self.n_critic - 1)
            d_loss, d_logs = self.d_update(batch, fake, labels)
        g_loss, g_logs = self.g_update(batch, fake, labels)
        out = {"d_loss": d_loss.detach(), "g_loss": g_loss.detach(), **d_logs, **g_logs}
        if self.augment.enabled:
            out["aug_p"] = torch.tensor(self.augment.p)
        return out

    def extra_state(self) -> dict[str, Any]:
        return {"augment": self.augment.state_dict(), "d_updates": self.d_updates}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        self.augment.load_state_dict(state.get("augment", {}))
        self.d_updates = int(state.get("d_updates", 0))


@RECIPES.register("mismatch", help="matching-aware D: real samples under a wrong label are fakes too (Reed et al.)")
class MismatchRecipe(GANRecipe):
    """Matching-aware discriminator (Reed et al., 2016, GAN-CLS), for conditional models.

    D's negatives are the generated batch plus ``mismatch_fraction`` x N real samples paired
    with a wrong label (the true one shifted by 1..K-1 classes, uniformly): a real sample is
    no longer enough to fool D, its label must fit too, so D's conditional term, and through
    it G's gradient, carries the class. The loss's fake term averages over all negatives: with
    the default fraction 1, half generated and half mismatched, as in the paper.
    """

    @dataclasses.dataclass
    class Options:
        mismatch_fraction: float = ranged(1.0, 0.0, 1.0, lo_open=True)  # mismatched real pairs per generated sample

    def __init__(self, config: Config, dataset: Dataset, device: torch.device) -> None:
        super().__init__(config, dataset, device)
        if self.num_classes < 2:
            raise ConfigError(f"recipe={config.recipe} needs model.conditional=true and a data set with at least 2 classes")
        if self.loss.relativistic:  # their D loss pairs real and fake logits one to one; there are more negatives here
            raise ConfigError(f"recipe={config.recipe} does not work with the relativistic loss '{config.loss.name}'")
        self.rngs["mismatch"] = torch.Generator(device=device).manual_seed(config.train.seed + 7)

    def extra_negatives(self, real_in: torch.Tensor,
                        labels: torch.Tensor | None) -> list[tuple[torch.Tensor, torch.Tensor | None]]:
        assert labels is not None
        n = max(1, round(self.options.mismatch_fraction * len(real_in)))
        shift = torch.randint(1, self.num_classes, (n,), generator=self.rngs["mismatch"], device=self.device)
        return [(real_in[:n], (labels[:n] + shift) % self.num_classes)]  # the first n real samples, wrong labels


@RECIPES.register("unrolled", help="unrolled GAN: G steps against D unrolled k updates ahead (Metz et al.)")
class UnrolledRecipe(GANRecipe):
    """Unrolled GAN (Metz et al., 2017).

    Before each generator update the discriminator is trained ``unroll_steps`` more times
    on fresh batches; the generator's loss is taken against that look-ahead critic, which
    anticipates how D would punish a collapsed G; then D is restored to its state before the
    unrolling (weights and optimizer). As in most implementations, the gradient does not
    flow back through the unrolled updates (no second-order terms).
    """

    @dataclasses.dataclass
    class Options:
        unroll_steps: int = ranged(5, 0, 100)  # k: discriminator updates looked ahead

    def g_update(self, batch: Batch, fake: torch.Tensor, labels: torch.Tensor | None) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        d, d_opt = self.discriminator, self.optimizers["discriminator"]
        saved = ({k: v.clone() for k, v in d.state_dict().items()}, copy.deepcopy(d_opt.state_dict()), self.d_updates)
        for _ in range(self.options.unroll_steps):
            extra = next(self._batches)
            extra_fake, extra_labels = self.make_fake(extra, grad=False)
            self.d_update(extra, extra_fake, extra_labels)
        try:
            return super().g_update(batch, fake, labels)
        finally:
            d.load_state_dict(saved[0])
            d_opt.load_state_dict(saved[1])
            self.d_updates = saved[2]

    def train_step(self, batches: Iterator[Batch], step: int) -> dict[str, torch.Tensor]:
        self._batches = batches
        return super().train_step(batches, step)


#: Modules holding the recipes of particular families (registered on import).
RECIPE_MODULES = ("auxiliary", "selfcond", "progressive", "style", "translation", "cyclegan", "srgan", "text", "tabular")


def _import_family_recipes() -> None:
    import importlib

    for module in RECIPE_MODULES:
        importlib.import_module(f"{__package__}.{module}")


_import_family_recipes()
