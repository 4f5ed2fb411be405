"""Modalities: the seam that kinds of data (images, 2-D points, audio, text, video; tables next) plug into.

A :class:`Modality` owns everything that depends on what one sample *is*:

* how stored samples map to the model's range and back (:meth:`~Modality.to_model`,
  :meth:`~Modality.to_stored`) and what stored data must look like (:meth:`~Modality.check`);
* how a batch of generator outputs is written to a file (:attr:`~Modality.writers`, by
  ``--out`` suffix: ``ganforge sample``) and previewed as a picture (:meth:`~Modality.preview`:
  the trainer's ``samples/step-N.png``, ``report.html``, the serve page);
* the default metrics and feature extractor of ``ganforge eval`` (:attr:`~Modality.default_metrics`,
  :attr:`~Modality.extractor`: None when samples are their own features);
* the files a browser presents (:class:`Media`): one stored sample as a file (:attr:`~Modality.media`,
  :meth:`~Modality.encode`: the serve API's samples, ``ganforge synthesize``'s folders), and a batch a
  person plays beside its picture (:attr:`~Modality.playable`, :meth:`~Modality.encode_playable`: the
  trainer's ``samples/step-N.wav`` that ``report.html`` embeds, the serve API's ``grid`` of clips);
* what ``report.html`` adds beside the previews (:meth:`~Modality.report_sections`: the training data
  against samples of the run's generator; tables: a histogram per column).

Data sets declare their modality (``Dataset.modality``), the trainer stamps it into the
generator's metadata, and every command looks the modality up here. Adding one is a
subclass and a :func:`register` call (see ``docs/architecture.md``); the trainer, the CLI's
commands and the serve app never name a modality.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from PIL import Image

from .core import IMAGE_SUFFIXES, atomic_write_bytes, from_uint8, to_uint8
from .errors import UserError
from .registry import Registry
from .viz import image_grid, png_bytes, save_png, scatter_plot

#: ``write(modality, samples, path, nrow=..., reference=..., metadata=...)``: a batch of outputs to a file.
Writer = Callable[..., Path]

MODALITIES: Registry["Modality"] = Registry("modality")


@dataclass(frozen=True)
class Media:
    """A kind of file a browser presents: its MIME type (``image/png``, ``audio/wav``) and file suffix."""

    type: str
    suffix: str

    @property
    def element(self) -> str:
        """The HTML element that presents it: ``table`` (CSV rows), else from the MIME type's major part ``img``,
        ``audio``, ``video`` or ``blockquote`` (text). The serve page's ``elementFor`` maps them the same way."""
        return _ELEMENTS.get(self.type) or _ELEMENTS.get(self.type.split("/", 1)[0], "object")


#: MIME types, then major parts of them -> the element that presents such a file (:attr:`Media.element`).
_ELEMENTS = {"text/csv": "table", "image": "img", "audio": "audio", "video": "video", "text": "blockquote"}


PNG = Media("image/png", ".png")


@dataclass(frozen=True)
class ReportSection:
    """A part of ``report.html`` that a modality adds (:meth:`Modality.report_sections`).

    Attributes:
        title: its heading (plain text).
        text: a paragraph under it (plain text).
        figures: self-contained HTML fragments (inline SVG), shown side by side.
    """

    title: str
    text: str
    figures: tuple[str, ...] = ()


# The writers every modality may list in its ``writers`` (a new modality reuses them).


def write_with_provenance(path: Path, data: bytes, metadata: dict[str, Any] | None, **counts: int) -> Path:
    """``data`` to ``path`` and, for formats with nowhere to keep it (text lines, CSV), the provenance
    plus ``counts`` beside it in ``FILE.provenance.json``; both written atomically."""
    atomic_write_bytes(path, data)
    sidecar = path.with_name(path.name + ".provenance.json")
    atomic_write_bytes(sidecar, json.dumps({**(metadata or {}), **counts}, indent=1).encode())
    return path


def write_npy(modality: "Modality", samples: torch.Tensor, path: Path, **_: Any) -> Path:
    """The raw generator outputs (float32, model range) as a NumPy array."""
    np.save(path, samples.float().cpu().numpy())
    return path


def write_png(modality: "Modality", samples: torch.Tensor, path: Path, **options: Any) -> Path:
    """The modality's :meth:`~Modality.preview` of the batch as one PNG, with provenance text chunks."""
    return modality.write_preview(samples, path, **options)


def write_pngs(modality: "Modality", samples: torch.Tensor, path: Path, *, metadata: dict[str, Any] | None = None,
                 **_: Any) -> Path:
    """One PNG per image, ``DIR/000000.png`` ... (each with the batch's provenance)."""
    path.mkdir(parents=True, exist_ok=True)
    for i, image in enumerate(to_uint8(samples)):
        array = image.permute(1, 2, 0).numpy()
        picture = Image.fromarray(array[:, :, 0] if array.shape[2] == 1 else array)
        save_png(picture, path / f"{i:06d}.png", {**(metadata or {}), "index": i})
    return path


class Modality:
    """One kind of data. Subclasses set the attributes and override what differs.

    Attributes:
        name: registry name (``image``, ``points``, ...), stored in generator metadata.
        description: one line for ``ganforge data`` and docs.
        default_metrics: what ``ganforge eval`` computes when no ``--metrics`` is given.
        extractor: default feature extractor for metrics on features; None: samples are
            their own features (flattened).
        writers: ``--out`` suffix -> writer; ``""`` (no suffix) names a folder of single files.
        preview_caption: how ``report.html`` titles the previews.
        media: the file one stored sample becomes (:meth:`encode`); None: none (not served, not synthesized).
        playable: the file a batch becomes for a person to play beside its preview picture
            (:meth:`encode_playable`; audio: the clips one after another in a WAV); None: the picture is all.
        data_suffixes: the files of this kind that folder data sets read (``synthesize --balance`` counts them).
        scalable: whether samples can be enlarged (the serve API's ``scale``: images).
        report_samples: how many training samples, and as many generated ones, ``report.html`` hands
            :meth:`report_sections` (at most); 0: it adds nothing, and reads no data.
    """

    name: str = ""
    plural: str = "samples"  # how messages name a set of them ("images", "points")
    description: str = ""
    default_metrics: tuple[str, ...] = ("fid",)
    extractor: str | None = None
    writers: dict[str, Writer] = {".npy": write_npy}
    preview_caption: str = "samples"
    media: Media | None = None
    playable: Media | None = None
    data_suffixes: tuple[str, ...] = ()
    scalable: bool = False
    #: Dimensions of one sample (``infer`` maps unnamed data of that many dimensions here); 0: none.
    rank: int = 0
    #: Fewest samples a preview shows (a scatter plot needs many points to show a mixture).
    min_preview: int = 0
    report_samples: int = 0

    @property
    def servable(self) -> bool:
        """Whether ``ganforge serve`` can present it: one sample is a file a browser shows or plays."""
        return self.media is not None

    def check(self, data: torch.Tensor, what: str) -> None:
        """Raise :class:`UserError` unless ``data`` is stored data of this modality."""

    def to_model(self, stored: torch.Tensor) -> torch.Tensor:
        """Stored samples -> the model's input range (float)."""
        return stored.float()

    def to_stored(self, outputs: torch.Tensor) -> torch.Tensor:
        """Generator outputs -> stored form (what data sets hold and metrics read)."""
        return outputs.detach().float()

    def generator_meta(self, dataset: Any) -> dict[str, Any]:
        """What outputs need to know about the training data, stamped into ``generator/config.json``'s meta
        (audio: its sample rate). Called by the trainer with the data set."""
        return {}

    def output_fields(self, meta: dict[str, Any]) -> dict[str, Any]:
        """Fields of a generator's ``meta`` that every output file's provenance repeats (audio: ``sample_rate``)."""
        return {}

    def source_info(self, meta: dict[str, Any]) -> dict[str, Any]:
        """What evaluation keeps of a generator's ``meta`` beside its samples (default: :meth:`output_fields`;
        text: the vocabulary, too large for provenance)."""
        return self.output_fields(meta)

    def bind(self, context: dict[str, Any]) -> "Modality":
        """This modality for the samples of one generator or data set, from its ``meta`` or ``info``.

        Samples that need their context to be read (text: word ids need the vocabulary) get a
        modality that carries it; the default is the shared instance itself.
        """
        return self

    def extractor_input(self, stored: torch.Tensor, info: dict[str, Any], extractor: Any) -> torch.Tensor:
        """Stored samples as ``extractor`` reads them, given their source's ``info`` (audio: resampled to its rate).

        The default passes them through (extractors own their preprocessing).
        """
        return stored

    def conform(self, source: Any, reference: Any) -> Any:
        """``source`` (an evaluation :class:`~ganforge.evaluation.sources.Source`) made comparable with
        ``reference``, a source of the same modality (audio: resampled to its sample rate). Default: as is."""
        return source

    def features(self, stored: torch.Tensor) -> torch.Tensor:
        """Features of stored samples when :attr:`extractor` is None: the flattened samples."""
        return stored.float().reshape(len(stored), -1)

    def preview(self, samples: torch.Tensor, *, nrow: int | None = None, reference: torch.Tensor | None = None) -> Image.Image:
        """A picture of a batch of outputs (model range) for sample grids, reports and the serve page."""
        raise NotImplementedError

    def write_preview(self, samples: torch.Tensor, path: Path, *, nrow: int | None = None,
                      reference: torch.Tensor | None = None, metadata: dict[str, Any] | None = None) -> Path:
        """:meth:`preview` saved as a PNG with ``metadata`` text chunks."""
        return save_png(self.preview(samples, nrow=nrow, reference=reference), path, metadata)

    def report_sections(self, real: torch.Tensor, fake: torch.Tensor) -> list[ReportSection]:
        """What ``report.html`` shows of stored training samples ``real`` against stored generated ones ``fake``
        (each at most :attr:`report_samples`; called on the modality bound to the run's generator). Default: nothing."""
        return []

    def encode(self, stored: torch.Tensor, metadata: dict[str, Any], *, scale: int = 1) -> bytes:
        """One stored sample (:meth:`to_stored` of an output) as a :attr:`media` file with ``metadata`` as provenance.

        ``scale`` enlarges it where the modality is :attr:`scalable`. The same sample and
        metadata always give the same bytes.
        """
        raise UserError(f"{self.name} samples have no single-file form (write them with --out FILE.npy)")

    def encode_playable(self, samples: torch.Tensor, metadata: dict[str, Any]) -> bytes:
        """A batch of outputs (model range) as one :attr:`playable` file with ``metadata`` as provenance."""
        raise UserError(f"{self.name} samples have no playable form")

    @property
    def batch_media(self) -> Media:
        """What :meth:`encode_batch` makes: the :attr:`playable` file where there is one, else the preview PNG."""
        return self.playable or PNG

    def encode_batch(self, samples: torch.Tensor, metadata: dict[str, Any], *, nrow: int | None = None,
                     scale: int = 1) -> bytes:
        """A batch of outputs (model range) as one :attr:`batch_media` file: the serve API's ``format=grid``."""
        if self.playable is not None:
            return self.encode_playable(samples, metadata)
        return png_bytes(self.preview(samples, nrow=nrow), metadata, scale if self.scalable else 1)

    def size(self, shape: tuple[int, ...], count: int, scale: int = 1) -> tuple[int, str]:
        """The values ``count`` samples of ``shape`` make at ``scale`` (what a size limit counts), and how to say it."""
        values = count * math.prod(int(s) for s in shape)
        return values, f"{count} {self.plural} of {values // max(count, 1)} values ({values} in all)"

    def condition(self, generator: Any, spec: str) -> dict[str, Any]:
        """Make ``generator`` produce only samples that satisfy ``spec`` (``ganforge sample --condition``);
        returns what the samples' provenance records of it. Modalities without conditions refuse."""
        raise UserError(f"--condition applies to table runs (column=value); this generator makes {self.plural}")

    @property
    def suffixes(self) -> list[str]:
        return [s for s in self.writers if s]

    def writer_for(self, out: str | Path) -> Writer:
        """The writer of ``out``'s suffix (a path ending in ``/`` names a folder of single files).

        Raises:
            UserError: a suffix this modality cannot write (the message lists the ones it can).
        """
        text = str(out)
        suffix = "" if text.endswith(("/", "\\")) else Path(text).suffix.lower()
        writer = self.writers.get(suffix) if suffix or text.endswith(("/", "\\")) else None
        if writer is None:
            accepted = " or ".join(self.suffixes)
            folder = " (or a folder: DIR/)" if "" in self.writers else ""
            raise UserError(f"--out must end in {accepted}{folder} for {self.name} samples, got '{Path(text).name}'")
        return writer

    def write(self, samples: torch.Tensor, out: str | Path, *, nrow: int | None = None,
              reference: torch.Tensor | None = None, metadata: dict[str, Any] | None = None) -> Path:
        """Write a batch of generator outputs to ``out``, in the format its suffix names."""
        writer = self.writer_for(out)
        out = Path(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        return writer(self, samples, out, nrow=nrow, reference=reference, metadata=metadata)


class ImageModality(Modality):
    """Images ``[C, H, W]``: stored as uint8, modelled in [-1, 1]; scored on Inception features."""

    name = "image"
    rank = 3  # [C, H, W]
    plural = "images"
    description = "images [C, H, W] (uint8 on disk, [-1, 1] in the model)"
    default_metrics = ("fid",)
    extractor = "inception"
    writers = {".png": write_png, ".npy": write_npy, "": write_pngs}
    preview_caption = "sample grids"
    media = PNG
    data_suffixes = IMAGE_SUFFIXES
    scalable = True

    def check(self, data: torch.Tensor, what: str) -> None:
        if data.dim() != 4 or data.dtype != torch.uint8:
            raise UserError(f"{what}: images must be uint8 [N, C, H, W], got {data.dtype} {tuple(data.shape)}")

    def to_model(self, stored: torch.Tensor) -> torch.Tensor:
        return from_uint8(stored)

    def to_stored(self, outputs: torch.Tensor) -> torch.Tensor:
        return to_uint8(outputs)

    def preview(self, samples: torch.Tensor, *, nrow: int | None = None, reference: torch.Tensor | None = None) -> Image.Image:
        return image_grid(samples, nrow)

    def encode(self, stored: torch.Tensor, metadata: dict[str, Any], *, scale: int = 1) -> bytes:
        return png_bytes(image_grid(stored[None], 1, padding=0), metadata, scale)

    def size(self, shape: tuple[int, ...], count: int, scale: int = 1) -> tuple[int, str]:
        _, height, width = (int(s) for s in shape)
        pixels = count * height * scale * width * scale
        return pixels, f"{count} images of {width * scale}x{height * scale} pixels ({pixels} in all)"


class PointsModality(Modality):
    """Vectors ``[D]`` in data coordinates (the 2-D Gaussian mixtures): their own features."""

    name = "points"
    rank = 1  # [D]
    plural = "points"
    description = "vectors [D] in data coordinates (2-D mixtures: scatter plots)"
    default_metrics = ("fid",)
    extractor = None
    writers = {".png": write_png, ".npy": write_npy}
    preview_caption = "scatter plots"
    min_preview = 1024

    def generator_meta(self, dataset: Any) -> dict[str, Any]:
        # Mixtures of Gaussians: their centres and spread, which mode counting reads back.
        if "centers" not in dataset.info:
            return {}
        return {"centers": torch.as_tensor(dataset.info["centers"]).tolist(), "std": float(dataset.info["std"])}

    def check(self, data: torch.Tensor, what: str) -> None:
        if data.dim() != 2 or not data.is_floating_point():
            raise UserError(f"{what}: points must be float [N, D], got {data.dtype} {tuple(data.shape)}")

    def preview(self, samples: torch.Tensor, *, nrow: int | None = None, reference: torch.Tensor | None = None) -> Image.Image:
        if samples.dim() != 2 or samples.shape[1] != 2:
            raise UserError(f"only 2-D points can be plotted, got samples of shape {tuple(samples.shape)}; write .npy")
        return scatter_plot(samples, None if reference is None else reference.float())


def register(modality: Modality) -> Modality:
    """Add ``modality`` to :data:`MODALITIES` (its :attr:`~Modality.name` is the key)."""
    MODALITIES.add(modality.name, modality, help=modality.description)
    return modality


def get(name: str) -> Modality:
    """The registered modality ``name`` (a one-line error with a suggestion otherwise)."""
    return MODALITIES.get(name)


def infer(shape: tuple[int, ...]) -> str:
    """The modality of samples of this shape, for data, arrays and generators that do not name one.

    The first registered modality whose :attr:`~Modality.rank` is ``len(shape)`` (images 3,
    audio clips 2, points 1); ``points`` for any other rank.
    """
    return next((name for name in MODALITIES.names() if MODALITIES.get(name).rank == len(shape)), "points")


def of(obj: Any) -> Modality:
    """The modality of a data set, a generator (``meta["modality"]``, else its output shape) or a source,
    bound to its context (:meth:`Modality.bind`: the generator's ``meta``, else the object's ``info``)."""
    name = getattr(obj, "modality", None) or (getattr(obj, "meta", None) or {}).get("modality")
    if not name and hasattr(obj, "in_channels"):  # image-to-image translators
        name = "image"
    if not name:
        shape = getattr(obj, "output_shape", None)
        if shape is None:
            raise UserError(f"cannot tell the modality of a {type(obj).__name__}")
        name = infer(tuple(shape))
    context = getattr(obj, "meta", None) or getattr(obj, "info", None) or {}
    return get(str(name)).bind(context if isinstance(context, dict) else {})


register(ImageModality())
register(PointsModality())

__all__ = [
    "MODALITIES", "PNG", "ImageModality", "Media", "Modality", "PointsModality", "ReportSection", "Writer", "get", "infer",
    "of", "register", "write_npy", "write_png", "write_pngs",
]
