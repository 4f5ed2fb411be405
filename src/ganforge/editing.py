"""Latent editing: semantic directions found without labels, and StyleGAN's style mixing.

* **SeFa** (Shen & Zhou 2021, "Closed-Form Factorization of Latent Semantics"): a latent ``v``
  enters the generator through a linear map ``A v`` (a DCGAN's first transposed convolution, an
  MLP's first layer; StyleGAN's per-layer style affines, stacked). The directions ``d`` that move
  that first output most, ``argmax |A d|`` with ``|d| = 1``, are the eigenvectors of ``A^T A``
  with the largest eigenvalues: no sampling, no training.
* **GANSpace** (Harkonen et al. 2020): principal components of sampled latents. In StyleGAN's
  ``w`` space they are PCA of mapped ``w``; a ``z``-space generator's ``z`` is isotropic, so its
  components are those of the first layer's outputs, carried back to ``z`` by least squares
  (GANSpace's recipe for BigGAN).

A direction ``k`` is named ``sefa:k`` or ``ganspace:k`` (0 = the strongest). Strengths are in
standard deviations of sampled latents along the direction, so ``-3..3`` spans the data. An
edited latent ``v + s * sigma_d * d`` renders one image per strength (:func:`edit_strip`).

Style mixing (:func:`style_mix`) feeds the ``w`` of one seed to a range of StyleGAN's layers and
another seed's ``w`` to the rest: the early (4x4, 8x8) layers set coarse structure, the late ones
fine detail.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .core import eval_mode
from .errors import UserError
from .models import Generator
from .models.base import seeded_latents

METHODS = ("sefa", "ganspace")
#: Latents sampled for GANSpace's PCA and for the standard deviation along a direction.
SAMPLES = 5000


@dataclass(frozen=True)
class Directions:
    """Unit directions ``[K, dim]`` in a latent space (``z`` or ``w``), strongest first, with the standard
    deviation of sampled latents along each (``scales``) and what found them (``method``)."""

    vectors: torch.Tensor
    scales: torch.Tensor
    space: str
    method: str


def styled(generator: Generator) -> bool:
    """Whether the generator has StyleGAN's mapping network and synthesis from per-layer ``w``."""
    return hasattr(generator, "synthesize") and hasattr(generator, "styles")


def first_linear_map(generator: Generator) -> tuple[nn.Module, torch.Tensor]:
    """The layer ``z`` enters and its matrix ``A [out, latent_dim]`` on ``z`` (label inputs left out)."""
    d = generator.latent_dim
    for module in generator.modules():
        if isinstance(module, nn.Linear) and module.in_features >= d:
            return module, module.weight.detach()[:, :d]
        if isinstance(module, nn.ConvTranspose2d) and module.in_channels >= d:
            return module, module.weight.detach()[:d].flatten(1).T  # [in, out, k, k] -> [out * k * k, z]
        if isinstance(module, (nn.Conv2d, nn.Conv1d, nn.ConvTranspose1d)):
            break  # a convolution that is not fed by z comes first: no linear map to read
    raise UserError("this generator has no linear first layer on z to factorise: use --direction ganspace:K")


def style_matrix(generator: Generator) -> torch.Tensor:
    """StyleGAN's style affines stacked: ``[sum of their outputs, w_dim]`` (each layer's ``s = A_l w + b_l``)."""
    weights = [m.effective_weight().detach() for name, m in generator.named_modules()
               if name.endswith("affine") and hasattr(m, "effective_weight")]
    if not weights:
        raise UserError("this StyleGAN generator has no style affines to factorise")
    return torch.cat(weights)


def _scales(vectors: torch.Tensor, samples: torch.Tensor) -> torch.Tensor:
    return ((samples - samples.mean(0)) @ vectors.T).std(0)


@torch.no_grad()
def find_directions(generator: Generator, method: str, count: int = 10, *, seed: int = 0) -> Directions:
    """The first ``count`` directions of ``method`` (``sefa`` or ``ganspace``) in the generator's editing space."""
    if method not in METHODS:
        raise UserError(f"--direction is sefa:K or ganspace:K, got method '{method}'")
    with eval_mode(generator):
        z = seeded_latents(SAMPLES, generator.latent_dim, seed).to(generator.device)
        labels = torch.arange(SAMPLES, device=z.device) % generator.num_classes if generator.num_classes else None
        if styled(generator):
            w = generator.styles(z, labels, 1.0)[:, 0]  # type: ignore[operator]
            if method == "sefa":
                vectors = _top_eigenvectors(style_matrix(generator), count)
            else:
                vectors = torch.linalg.svd(w - w.mean(0), full_matrices=False).Vh[:count]
            return Directions(vectors, _scales(vectors, w), "w", method)
        layer, matrix = first_linear_map(generator)
        if method == "sefa":
            vectors = _top_eigenvectors(matrix, count)
        else:
            outputs: list[torch.Tensor] = []
            handle = layer.register_forward_hook(lambda _m, _i, out: outputs.append(out.flatten(1)))
            try:
                generator(z, labels)
            finally:
                handle.remove()
            h = outputs[0] - outputs[0].mean(0)
            components = torch.linalg.svd(h, full_matrices=False).Vh[:count]  # [K, features]
            coordinates = h @ components.T  # [N, K]
            # least squares z -> coordinates: the z direction that moves each coordinate (GANSpace's regression)
            vectors = torch.linalg.lstsq(z - z.mean(0), coordinates).solution.T  # [K, z]
            vectors = vectors / vectors.norm(dim=1, keepdim=True)
        return Directions(vectors, _scales(vectors, z), "z", method)


def _top_eigenvectors(matrix: torch.Tensor, count: int) -> torch.Tensor:
    """The unit eigenvectors of ``A^T A`` with the ``count`` largest eigenvalues, ``[count, dim]``, signs fixed
    (largest entry positive) so that directions are the same on every machine."""
    values, vectors = torch.linalg.eigh(matrix.double().T @ matrix.double())
    top = vectors[:, values.argsort(descending=True)[:count]].T.float()
    signs = torch.sign(top.gather(1, top.abs().argmax(1, keepdim=True)))
    return top * signs


def parse_direction(spec: str) -> tuple[str, int]:
    """``sefa:3`` -> ``("sefa", 3)``."""
    method, sep, index = spec.partition(":")
    if not sep or method not in METHODS or not index.isdigit():
        raise UserError(f"--direction is sefa:K or ganspace:K (K = 0 for the strongest), got '{spec}'")
    return method, int(index)


@torch.no_grad()
def edit_strip(generator: Generator, latent: torch.Tensor, directions: Directions, index: int, strengths: torch.Tensor,
               label: int | None = None) -> torch.Tensor:
    """One image per strength of ``latent`` moved along direction ``index``: ``[S, C, H, W]`` in [-1, 1].

    ``latent``: ``z [latent_dim]``, or for ``w``-space directions ``w [w_dim]`` or ``w+ [num_ws, w_dim]`` (a ``z``
    is mapped first).
    """
    if not 0 <= index < len(directions.vectors):
        raise UserError(f"direction {index} is not among the {len(directions.vectors)} found")
    device = generator.device
    step = (directions.vectors[index] * directions.scales[index]).to(device)
    s = strengths.to(device)
    labels = None if not generator.num_classes else generator.check_labels(torch.tensor(label or 0), len(s))
    latent = latent.to(device).float()
    with eval_mode(generator):
        if directions.space == "z":
            if latent.shape != (generator.latent_dim,):
                raise UserError(f"a z latent of {generator.latent_dim} values is needed, got shape {tuple(latent.shape)}")
            return generator(latent[None] + s[:, None] * step, labels).cpu()
        num_ws = generator.num_ws  # type: ignore[attr-defined]
        if latent.shape == (generator.latent_dim,) and latent.shape != step.shape:
            latent = generator.styles(latent[None], labels[:1] if labels is not None else None, 1.0)[0]  # type: ignore[operator]
        if latent.dim() == 1:
            latent = latent[None].expand(num_ws, -1)
        if latent.shape != (num_ws, step.shape[0]):
            raise UserError(f"a w ({step.shape[0]}) or w+ ({num_ws} x {step.shape[0]}) latent is needed, got {tuple(latent.shape)}")
        return generator.synthesize(latent[None] + s[:, None, None] * step).cpu()  # type: ignore[operator]


@torch.no_grad()
def style_mix(generator: Generator, rows: list[int], cols: list[int], layers: tuple[int, int],
              label: int | None = None) -> torch.Tensor:
    """StyleGAN's style-mixing grid ``[(1 + R) * (1 + C), C, H, W]``: the first row holds the column seeds' images
    (after a blank corner), the first column the row seeds'; cell (r, c) takes layers ``layers[0]..layers[1]``
    (inclusive) from column seed c and the others from row seed r."""
    if not styled(generator):
        raise UserError("style mixing needs a StyleGAN run (per-layer styles)")
    num_ws = generator.num_ws  # type: ignore[attr-defined]
    first, last = layers
    if not 0 <= first <= last < num_ws:
        raise UserError(f"--layers is A-B with 0 <= A <= B < {num_ws} (this generator's style layers), got {first}-{last}")
    device = generator.device
    with eval_mode(generator):
        def ws_of(seeds: list[int]) -> torch.Tensor:
            z = torch.stack([seeded_latents(1, generator.latent_dim, s)[0] for s in seeds]).to(device)
            labels = None if not generator.num_classes else generator.check_labels(torch.tensor(label or 0), len(seeds))
            return generator.styles(z, labels)  # type: ignore[operator]

        row_ws, col_ws = ws_of(rows), ws_of(cols)
        chosen = torch.zeros(num_ws, dtype=torch.bool, device=device)
        chosen[first:last + 1] = True
        mixed = torch.where(chosen[None, None, :, None], col_ws[None], row_ws[:, None])  # [R, C, num_ws, w_dim]
        images = generator.synthesize(torch.cat([col_ws, row_ws, mixed.flatten(0, 1)])).cpu()  # type: ignore[operator]
    c, r = len(cols), len(rows)
    blank = -torch.ones_like(images[:1])
    grid = [blank, images[:c]]
    for i in range(r):
        grid += [images[c + i:c + i + 1], images[c + r + i * c:c + r + (i + 1) * c]]
    return torch.cat(grid)
