"""Super-resolution recipe ``srgan``: SRResNet pre-training on pixels, then SRGAN / ESRGAN adversarial training.

Data are high-resolution images (``data.name: sr-folder``, or any image data set), cropped
at random to ``data.crop`` (a multiple of the scale). The low-resolution input is made from
each HR crop on the fly by bicubic downsampling with antialiasing,
``x = q(bicubic_{1/s}(y))`` (``F.interpolate(mode="bicubic", antialias=True)``, then rounded to
the 256 levels of a uint8 image by ``q``). That approximates MATLAB's ``imresize`` (torch's
kernel has ``a = -0.75`` where MATLAB's has ``-0.5``); evaluation uses the exact MATLAB
protocol (:mod:`ganforge.evaluation.superres`).

Two phases, a pure function of the step (so a resumed run continues exactly):

* steps ``< pretrain_steps``: ``L_G = pixel(G(x), y)`` (L1 or MSE), no discriminator (SRResNet);
* later steps: one discriminator update ``L_D = loss_D(D(y), D(G(x)))`` (``loss.name``;
  ESRGAN's is ``relativistic-average``), then
  ``L_G = w_pix * pixel + w_content * E|phi(G(x)) - phi(y)| + w_adv * loss_G(D(G(x)), D(y))``
  with ESRGAN's defaults ``w_pix = 1e-2, w_content = 1, w_adv = 5e-3`` and ``phi`` VGG-19 to
  conv5_4 (before activation). Without a content extractor (``content_extractor: null``) the
  content term is off (the SRGAN-MSE setting: pixel + adversarial).

``adversarial: false`` trains SRResNet alone for the whole run (no discriminator is built).
Logged: ``g_pixel`` and ``psnr_rgb`` (``10 log10(4 / MSE)`` of the batch in [-1, 1], RGB), and in
the adversarial phase ``g_adv``, ``g_content``, ``d_loss``, ``d_real``, ``d_fake``.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Callable, Iterator

import torch
import torch.nn.functional as F
from torch import nn

from ..config import MAX_STEPS, MAX_WEIGHT, Config, ranged
from ..core import from_uint8, to_uint8
from ..data import Dataset
from ..errors import ConfigError
from ..evaluation.superres import SREvalOptions
from ..extractors import EXTRACTORS
from ..extractors.vgg import VGG19Features
from ..losses.paired import content_loss, pixel_loss
from ..viz import comparison_grid
from .recipes import RECIPES, Batch
from .translation import GRID_ROWS, TranslationRecipe

if TYPE_CHECKING:
    from PIL import Image


def downsample(hr: torch.Tensor, scale: int) -> torch.Tensor:
    """LR inputs ``[N, C, H/s, W/s]`` of HR images ``[N, C, H, W]`` in [-1, 1]: antialiased bicubic, uint8 levels."""
    lr = F.interpolate(hr.float(), scale_factor=1 / scale, mode="bicubic", antialias=True, align_corners=False)
    return from_uint8(to_uint8(lr)).to(hr.dtype)


def batch_psnr(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``10 log10(4 / MSE)``: PSNR of a batch in [-1, 1] (peak-to-peak 2), all channels."""
    mse = (output.detach().float().clamp(-1, 1) - target.float()).square().mean()
    return 10.0 * torch.log10(4.0 / mse.clamp_min(1e-12))


@RECIPES.register(
    "srgan", help="super-resolution: SRResNet pixel-loss pre-training, then (E)SRGAN adversarial training (RaGAN, content loss)"
)
class SRGANRecipe(TranslationRecipe):
    """SRGAN / ESRGAN on high-resolution crops (see the module docstring for the losses)."""

    task = "super-resolution"

    @dataclasses.dataclass
    class Options(SREvalOptions):  # eval_sets, eval_tile, eval_margin: what `ganforge eval RUN_DIR` reads
        pretrain_steps: int = ranged(1000, 0, MAX_STEPS)  # steps of the pixel-loss phase (SRResNet) before the adversarial one
        adversarial: bool = True  # false: the pixel phase for the whole run, no discriminator
        pixel_loss: str = "l1"  # l1 (ESRGAN) | mse (SRResNet)
        pixel_weight: float = ranged(1e-2, 0, MAX_WEIGHT)  # adversarial phase: weight of the pixel loss
        content_weight: float = ranged(1.0, 0, MAX_WEIGHT)  # adversarial phase: weight of the content loss (when an extractor is set)
        adversarial_weight: float = ranged(5e-3, 0, MAX_WEIGHT)  # adversarial phase: weight of the generator's adversarial loss
        content_extractor: str | None = None  # vgg19 (needs its weights file) | null: no content loss
        content_weights: str | None = None  # weights file of the content extractor (default: see extractors.vgg)
        content_layer: str = "conv5_4"  # VGG-19 layer (before activation)

    def __init__(self, config: Config, dataset: Dataset, device: torch.device) -> None:
        super().__init__(config, dataset, device)
        o = self.options
        if dataset.sources is not None:
            raise ConfigError(
                f"recipe 'srgan' makes its low-resolution inputs from high-resolution images; '{dataset.name}' is "
                "paired (use data.name: sr-folder or an image data set)"
            )
        if o.pixel_loss not in ("l1", "mse"):
            raise ConfigError(f"recipe_options.pixel_loss must be l1 or mse, got '{o.pixel_loss}'")
        if config.train.n_critic != 1:
            raise ConfigError("recipe 'srgan' makes one discriminator update per step: set train.n_critic=1")
        channels = dataset.shape[0]
        generator, discriminator = self.build_translator(channels, channels)
        if generator.scale < 2:
            raise ConfigError(f"recipe 'srgan' needs a super-resolution model (model.name: srresnet or rrdb), got '{config.model.name}'")
        self.init_networks(generator, discriminator, o.adversarial)
        self.content: Callable[[torch.Tensor], torch.Tensor] | None = None
        if o.content_extractor is not None and o.adversarial and o.content_weight > 0:
            self.content = self.build_content_extractor()

    def build_content_extractor(self) -> Callable[[torch.Tensor], torch.Tensor]:
        """``phi``: differentiable feature maps of the registered extractor (ConfigError without its weights)."""
        o = self.options
        EXTRACTORS.get(o.content_extractor)  # "did you mean" for a misspelt name
        if o.content_extractor != "vgg19":  # the other extractors give pooled vectors, not feature maps
            raise ConfigError(f"recipe_options.content_extractor must be vgg19 (feature maps) or null, got '{o.content_extractor}'")
        extractor = VGG19Features(o.content_weights, layer=o.content_layer).to(self.device).eval().requires_grad_(False)
        self.content_network = extractor  # kept out of self.networks: fixed, never checkpointed
        return extractor.feature_maps

    @property
    def scale(self) -> int:
        return int(self.generator.scale)

    @property
    def discriminator(self) -> nn.Module:
        return self.networks["discriminator"]

    def adversarial_phase(self, step: int) -> bool:
        """Whether step ``step`` (0-based) trains adversarially: ``adversarial and step >= pretrain_steps``."""
        return self.options.adversarial and step >= self.options.pretrain_steps

    def make_source(self, batch: Batch) -> torch.Tensor:
        """The LR input of the HR batch (see :func:`downsample`)."""
        return downsample(batch["image"], self.scale)

    # ------------------------------------------------------------------ updates

    def translate(self, source: torch.Tensor) -> torch.Tensor:
        with self.autocast():
            return self.generator(self.formatted(source))

    def score(self, images: torch.Tensor) -> torch.Tensor:
        """Discriminator logits ``[N]`` (float32)."""
        with self.autocast():
            return self.discriminator(self.formatted(images)).float()

    def d_update(self, target: torch.Tensor, fake: torch.Tensor) -> dict[str, torch.Tensor]:
        """One discriminator step on real HR crops against detached SR outputs."""
        self.optimizers["discriminator"].zero_grad(set_to_none=True)
        real_logits, fake_logits = self.score(target), self.score(fake.detach())
        loss = self.loss.d_loss(real_logits, fake_logits)
        self.optimize("discriminator", loss, self.discriminator)
        return {"d_loss": loss.detach(), "d_real": real_logits.detach().mean(), "d_fake": fake_logits.detach().mean()}

    def g_update(self, target: torch.Tensor, fake: torch.Tensor, adversarial: bool) -> dict[str, torch.Tensor]:
        """One generator step: the pixel loss alone, or the weighted pixel + content + adversarial loss."""
        o = self.options
        self.optimizers["generator"].zero_grad(set_to_none=True)
        pixel = pixel_loss(fake, target, o.pixel_loss)
        logs = {"g_pixel": pixel.detach(), "psnr_rgb": batch_psnr(fake, target)}
        if not adversarial:
            self.optimize("generator", pixel, self.generator)
            return {"g_loss": pixel.detach(), **logs}
        loss = o.pixel_weight * pixel
        if self.content is not None:
            content = content_loss(self.content, fake.float(), target.float())
            loss = loss + o.content_weight * content
            logs["g_content"] = content.detach()
        self.discriminator.requires_grad_(False)  # D's weights need no gradients meanwhile
        try:
            real_logits = None
            if self.loss.relativistic:
                with torch.no_grad():
                    real_logits = self.score(target)
            adv = self.loss.generator_loss(self.score(fake), real_logits)
            loss = loss + o.adversarial_weight * adv
            logs["g_adv"] = adv.detach()
            self.optimize("generator", loss, self.generator)
        finally:
            self.discriminator.requires_grad_(True)
        return {"g_loss": loss.detach(), **logs}

    def train_step(self, batches: Iterator[Batch], step: int) -> dict[str, torch.Tensor]:
        batch = next(batches)
        target = batch["image"]
        fake = self.translate(self.make_source(batch))
        adversarial = self.adversarial_phase(step)
        logs: dict[str, torch.Tensor] = {"phase": torch.tensor(2.0 if adversarial else 1.0)}
        if adversarial:
            logs.update(self.d_update(target, fake))
        logs.update(self.g_update(target, fake, adversarial))
        return logs

    # ------------------------------------------------------------------ trainer hooks

    def render_samples(self, generator: nn.Module, fixed: Batch) -> "Image.Image":
        """Rows ``LR (nearest) | bicubic | SR | HR``."""
        source = self.make_source(fixed)
        output = generator(self.formatted(source)).float()
        bicubic = F.interpolate(source.float(), scale_factor=self.scale, mode="bicubic", align_corners=False).clamp(-1, 1)
        return comparison_grid([c.cpu() for c in (source, bicubic, output, fixed["image"])], max_rows=GRID_ROWS)
