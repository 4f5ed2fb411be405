"""MoCoGAN (Tulyakov et al., 2018): video as a fixed content code and a path of motion codes.

A clip of ``T`` frames comes from one *content* latent ``z_C`` (kept for the whole clip: who
is in it) and ``T`` *motion* codes ``z_M(t)`` read off a GRU driven by fresh noise ``e_t`` at
every frame (how it moves). Frame ``t`` is an image generator's output for ``[z_C, z_M(t)]``.
The generator's latent is the flat vector ``[z_C, e_1 .. e_T]`` (``content_dim + T *
noise_dim`` numbers), so a latent fixes a clip, and ``interpolate`` can walk the content part
with the motion fixed or the other way round (:meth:`MoCoGANGenerator.split_latent`).

``model.motion`` says how a motion code becomes a frame. ``latent`` (the paper): the image
generator draws every frame from ``[z_C, z_M(t)]``, so the content must be drawn again, the
same, ``T`` times. ``translate``: the image generator draws the content once, from ``z_C``, as
a sprite of ``sprite_size`` pixels (default half the frame), and each motion code is read as
the sprite's position in frame ``t`` (a dense layer and a tanh); the frame is the sprite
placed there on a black canvas by bilinear resampling (``affine_grid``/``grid_sample``, so the
position gets gradients). Appearance then holds through the clip by construction, which
suits data that move rigid objects (moving digits), at a 1/T of the frame generator's cost.

Two discriminators judge: an image discriminator sees single frames (is each frame a good
picture?) and a video discriminator of 3-D convolutions sees whole clips (is the motion
right?). :class:`MoCoGANDiscriminator` returns both logits of every clip side by side,
``[video logits (N), image logits (N)]``. Every adversarial loss of ganforge averages over its
logits, so the loss of the pair is ``(L_V + L_I) / 2``: the paper's ``L_V + L_I`` up to a
constant factor, which Adam's updates do not see. The image discriminator reads frame
``i mod T`` of clip ``i``, so every batch covers the frame positions evenly (the paper draws
one frame at random; a fixed rule keeps training exactly reproducible).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from ..errors import ConfigError
from ..layers import LabelProjection
from . import MODELS, smallest_config
from .base import Discriminator, Generator, configurable, init_weights
from .dcgan import DCGANDiscriminator, DCGANGenerator, octaves
from .infogan import InfoGANDiscriminator, InfoGANGenerator


def video_shape(data_shape: tuple[int, ...]) -> tuple[int, int, int]:
    """``(frames, channels, resolution)`` of square clips ``(T, C, R, R)``; a one-line error otherwise."""
    if len(data_shape) != 4 or data_shape[2] != data_shape[3]:
        raise ConfigError(f"mocogan generates video clips (T, C, R, R) with square frames; got data of shape {tuple(data_shape)}")
    frames, channels, resolution = data_shape[0], data_shape[1], data_shape[2]
    octaves(resolution)  # a power of two the frame networks can build
    if frames < 4:
        raise ConfigError(f"mocogan needs clips of at least 4 frames (its video discriminator halves time twice), got {frames}")
    return frames, channels, resolution


#: How motion codes make frames (``model.motion``): see the module's docstring.
MOTIONS = ("latent", "translate")


@configurable
class MoCoGANGenerator(Generator):
    """Latents ``[N, content_dim + T * noise_dim]`` (and labels) -> clips ``[N, T, C, R, R]`` in [-1, 1]."""

    def __init__(self, frames: int = 16, channels: int = 1, resolution: int = 32, content_dim: int = 50,
                 motion_dim: int = 10, noise_dim: int = 10, base_channels: int = 32, num_classes: int = 0,
                 label_dim: int = 0, motion: str = "latent", sprite_size: int = 0, num_categorical: int = 0,
                 num_continuous: int = 0) -> None:
        super().__init__()
        self.frames, self.content_dim, self.noise_dim = frames, content_dim, noise_dim
        self.latent_dim, self.num_classes = content_dim + frames * noise_dim, num_classes
        self.output_shape = (frames, channels, resolution, resolution)
        self.mode = motion
        self.motion = nn.GRUCell(noise_dim, motion_dim)
        # The labels (conditional runs) join the content: the frame generator embeds them once per frame (or sprite).
        if motion == "translate":
            self.sprite_size = sprite_size or resolution // 2
            if num_categorical or num_continuous:  # InfoGAN codes: the content latent's last entries
                self.frame = InfoGANGenerator(channels, self.sprite_size, content_dim - num_categorical - num_continuous,
                                              num_categorical, num_continuous, base_channels, num_classes, label_dim)
            else:
                self.frame = DCGANGenerator(channels, self.sprite_size, content_dim, base_channels, num_classes, label_dim)
            self.place = nn.Linear(motion_dim, 2)  # motion code -> the sprite's (x, y) centre
        else:
            self.frame = DCGANGenerator(channels, resolution, content_dim + motion_dim, base_channels, num_classes, label_dim)
        self.apply(init_weights())

    @property
    def latent_parts(self) -> dict[str, slice]:
        return {"content": slice(0, self.content_dim), "motion": slice(self.content_dim, self.latent_dim)}

    def split_latent(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``z [N, latent_dim]`` -> content ``[N, content_dim]`` and motion noise ``[N, T, noise_dim]``."""
        return z[:, : self.content_dim], z[:, self.content_dim :].reshape(len(z), self.frames, self.noise_dim)

    @property
    def num_categorical(self) -> int:
        return getattr(self.frame, "num_categorical", 0)

    @property
    def num_continuous(self) -> int:
        return getattr(self.frame, "num_continuous", 0)

    def codes(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
        """InfoGAN's ``(noise, category, continuous)`` codes of a clip's content (``model.num_categorical`` and
        ``model.num_continuous``, with ``motion: translate``): the sprite generator's reading of ``z_C``."""
        if not isinstance(self.frame, InfoGANGenerator):
            raise ConfigError("this MoCoGAN has no InfoGAN codes (model.num_categorical and model.num_continuous are 0)")
        return self.frame.codes(self.split_latent(z)[0])

    def motion_codes(self, noise: torch.Tensor) -> torch.Tensor:
        """Motion noise ``[N, T, noise_dim]`` -> motion codes ``[N, T, motion_dim]`` (the GRU's states, from zero)."""
        h = noise.new_zeros(len(noise), self.motion.hidden_size)
        codes = []
        for t in range(self.frames):
            h = self.motion(noise[:, t], h)
            codes.append(h)
        return torch.stack(codes, dim=1)

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        content, noise = self.split_latent(z)
        if self.mode == "translate":
            return self.translated(self.frame(content, labels), self.motion_codes(noise))
        codes = torch.cat([content[:, None].expand(-1, self.frames, -1), self.motion_codes(noise)], dim=2)
        frame_labels = None if labels is None else labels.repeat_interleave(self.frames)
        frames = self.frame(codes.flatten(0, 1), frame_labels)  # [N * T, C, R, R]
        return frames.view(len(z), *self.output_shape)

    def translated(self, sprites: torch.Tensor, codes: torch.Tensor) -> torch.Tensor:
        """Sprites ``[N, C, S, S]`` placed at the positions the motion codes ``[N, T, motion_dim]`` give -> clips.

        In ``affine_grid``'s coordinates (the frame spans [-1, 1]) a sprite centred at ``c``
        covers ``c +- S / R``; ``tanh`` keeps ``|c| <= 1 - S / R``, so it never leaves the frame.
        Frame point ``u`` reads sprite point ``(u - c) R / S``; outside the sprite it reads
        zero, which the shift by one makes black (-1).
        """
        n, t = codes.shape[:2]
        channels, resolution = self.output_shape[1], self.output_shape[2]
        zoom = resolution / self.sprite_size
        centres = torch.tanh(self.place(codes)).flatten(0, 1) * (1 - 1 / zoom)  # [N * T, 2]: (x, y)
        theta = torch.zeros(n * t, 2, 3, dtype=sprites.dtype, device=sprites.device)
        theta[:, 0, 0] = theta[:, 1, 1] = zoom
        theta[:, :, 2] = -centres.to(sprites.dtype) * zoom
        grid = F.affine_grid(theta, [n * t, channels, resolution, resolution], align_corners=False)
        ink = (sprites + 1).repeat_interleave(t, dim=0)  # [N * T, C, S, S], black = 0
        frames = F.grid_sample(ink, grid, mode="bilinear", padding_mode="zeros", align_corners=False) - 1
        return frames.view(n, *self.output_shape)


@configurable
class VideoDiscriminator(nn.Module):
    """Clips ``[N, T, C, R, R]`` -> logits ``[N]``: 4x4x4 stride-2 3-D convolutions (batch norm, LeakyReLU) and a
    dense logit, plus a projection term for conditional models."""

    def __init__(self, frames: int = 16, channels: int = 1, resolution: int = 32, base_channels: int = 32,
                 num_classes: int = 0, stages: int = 3) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        width, c_in, t, r = base_channels, channels, frames, resolution
        for stage in range(stages):
            deep = t >= 4  # halve time while there are at least 4 frames, then convolve space only
            kernel, stride, padding = (4 if deep else 1, 4, 4), (2 if deep else 1, 2, 2), (1 if deep else 0, 1, 1)
            layers += [nn.Conv3d(c_in, width, kernel, stride, padding, bias=stage == 0)]
            layers += [nn.BatchNorm3d(width)] if stage else []
            layers.append(nn.LeakyReLU(0.2, True))
            t, r = (t // 2 if deep else t), max(1, r // 2)
            c_in, width = width, width * 2
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(c_in * t * r * r, 1)
        self.projection = LabelProjection(num_classes, c_in) if num_classes else None
        self.apply(init_weights())

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        h = self.features(x.transpose(1, 2))  # [N, C, T, R, R]: time is a depth axis for Conv3d
        logits = self.head(h.flatten(1)).flatten()
        if self.projection is not None:
            logits = logits + self.projection(h.sum(dim=(2, 3, 4)), labels)
        return logits


@configurable
class MoCoGANDiscriminator(Discriminator):
    """Clips ``[N, T, C, R, R]`` -> logits ``[2kN]``: the video discriminator's (``k`` copies), then the image
    discriminator's on frames ``(i + j T / k) mod T`` of clip ``i``, ``j < k`` (``k = image_frames``).

    Repeating the video logit ``k`` times keeps the losses' mean at ``(L_V + L_I) / 2`` whatever
    ``k``: the ``k`` frame judgements of a clip weigh as much together as its video judgement.
    """

    def __init__(self, frames: int = 16, channels: int = 1, resolution: int = 32, base_channels: int = 32,
                 video_base_channels: int = 32, num_classes: int = 0, noise: float = 0.0, image_frames: int = 1,
                 num_categorical: int = 0, num_continuous: int = 0, q_hidden: int = 128) -> None:
        super().__init__()
        self.num_classes, self.noise, self.image_frames = num_classes, noise, image_frames
        self.judgements = 2 * image_frames
        self.video = VideoDiscriminator(frames, channels, resolution, video_base_channels, num_classes)
        if num_categorical or num_continuous:  # InfoGAN's Q head reads the judged frames
            self.image = InfoGANDiscriminator(channels, resolution, base_channels, num_classes, num_categorical,
                                              num_continuous, q_hidden)
        else:
            self.image = DCGANDiscriminator(channels, resolution, base_channels, num_classes)

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.forward_aux(x, labels, heads=False)[0]

    def forward_aux(self, x: torch.Tensor, labels: torch.Tensor | None = None,
                    heads: bool = True) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The logits of :meth:`forward` and (InfoGAN codes, ``recipe: infogan``) Q's outputs of every clip,
        ``[N, ...]``: the mean over the clip's judged frames, which all show its one sprite."""
        if self.training and self.noise > 0:
            # Instance noise (the official MoCoGAN code's Noise layers): real and generated clips both
            # blurred by N(0, noise^2), so their distributions overlap and D cannot win outright.
            x = x + self.noise * torch.randn_like(x)
        n, t, k = len(x), x.shape[1], self.image_frames
        clip = torch.arange(n, device=x.device).repeat(k)  # [k * N]: every clip, k times
        spread = torch.arange(k, device=x.device).repeat_interleave(n) * t // k  # frame offsets 0, T/k, ...
        frames = x[clip, (clip + spread) % t]  # [k * N, C, R, R]
        image_labels = None if labels is None else labels.repeat(k)
        aux: dict[str, torch.Tensor] = {}
        if heads and isinstance(self.image, InfoGANDiscriminator):
            image_logits, aux = self.image.forward_aux(frames, image_labels)
            aux = {name: value.view(k, n, -1).mean(dim=0) for name, value in aux.items()}
        else:
            image_logits = self.image(frames, image_labels)
        return torch.cat([self.video(x, labels).repeat(k), image_logits]), aux


@MODELS.register("mocogan", help="MoCoGAN: content and motion latents, a frame generator, image and video discriminators")
@smallest_config(((4, 1, 8, 8), {"base_channels": 4, "video_base_channels": 4, "content_dim": 4, "motion_dim": 2,
                                 "noise_dim": 2}),)
def build_mocogan(
    data_shape: tuple[int, ...],
    num_classes: int = 0,
    *,
    content_dim: int = 50,
    motion_dim: int = 10,
    noise_dim: int = 10,
    base_channels: int = 32,
    d_base_channels: int | None = None,
    video_base_channels: int | None = None,
    label_dim: int = 0,
    d_noise: float = 0.0,
    image_frames: int = 1,
    motion: str = "latent",
    sprite_size: int = 0,
    num_categorical: int = 0,
    num_continuous: int = 0,
    q_hidden: int = 128,
) -> tuple[MoCoGANGenerator, MoCoGANDiscriminator]:
    """MoCoGAN for clips ``(T, C, R, R)`` (``R`` a power of two, ``T >= 4``).

    ``content_dim``: size of the per-clip content latent; ``motion_dim``: the GRU's state (the
    motion code of a frame); ``noise_dim``: the noise that drives the GRU at every frame.
    ``base_channels``: the frame generator (DCGAN's); ``d_base_channels`` and
    ``video_base_channels``: the image and video discriminators (default: ``base_channels``).
    ``d_noise``: standard deviation of the Gaussian instance noise added to every clip the
    discriminators read while training (0: none; clips span [-1, 1]). ``image_frames``: frames
    of every clip the image discriminator judges (1: the paper's one; up to ``T``).
    ``motion``: ``latent`` (the paper: every frame drawn from content and motion codes) or
    ``translate`` (the content drawn once as a sprite of ``sprite_size`` pixels, default ``R / 2``,
    and moved by the motion codes; see the module's docstring). ``num_categorical``,
    ``num_continuous``, ``q_hidden`` (``motion: translate``, ``recipe: infogan``): InfoGAN's codes,
    the last entries of the content latent, which a Q head on the image discriminator must read
    back from the frames (see the ``infogan`` model).
    """
    frames, channels, resolution = video_shape(data_shape)
    if not 1 <= image_frames <= frames:
        raise ConfigError(f"model.image_frames must be between 1 and the clips' {frames} frames, got {image_frames}")
    if motion not in MOTIONS:
        raise ConfigError(f"model.motion must be one of {', '.join(MOTIONS)}, got '{motion}'")
    if motion == "translate":
        size = sprite_size or resolution // 2
        if size >= resolution:
            raise ConfigError(f"model.sprite_size must be smaller than the {resolution}-pixel frames it moves in, got {size}")
        octaves(size)  # a power of two the sprite generator can build
    elif sprite_size or num_categorical or num_continuous:
        raise ConfigError("model.sprite_size, model.num_categorical and model.num_continuous only apply to model.motion=translate")
    if num_categorical + num_continuous > content_dim:
        raise ConfigError(f"model.num_categorical + model.num_continuous ({num_categorical + num_continuous}) must fit in "
                          f"model.content_dim ({content_dim}): the codes are the content latent's last entries")
    generator = MoCoGANGenerator(frames, channels, resolution, content_dim, motion_dim, noise_dim, base_channels,
                                 num_classes, label_dim, motion, sprite_size, num_categorical, num_continuous)
    discriminator = MoCoGANDiscriminator(frames, channels, resolution, d_base_channels or base_channels,
                                         video_base_channels or base_channels, num_classes, d_noise, image_frames,
                                         num_categorical, num_continuous, q_hidden)
    return generator, discriminator
