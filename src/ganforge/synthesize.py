"""Synthetic data sets from a trained generator: class folders of files with provenance (PNGs, WAVs).

::

    ganforge synthesize runs/cdcgan-mnist --per-class 1000 --out synth/
    ganforge synthesize runs/cdcgan-mnist --balance data/train --out synth/   # top up rare classes

A conditional generator writes one sub-folder per class (named by its ``class_names``, or the
class index), an unconditional one a flat folder: the layout ``data.name=image-folder`` (images)
and ``data.name=audio-folder`` (clips) read. What a sample becomes is its modality's
(:meth:`~ganforge.modality.Modality.encode`: a PNG of an image, a WAV of a clip).
Sample ``i`` of a set made with seed ``S`` has its own seed :func:`image_seed` ``(S, i)``, stored
with its label and truncation in the file's provenance (:func:`~ganforge.sampling.provenance`:
PNG text chunks, WAV RIFF INFO), so ``ganforge sample RUN --n 1 --seed SEED --label LABEL`` redraws it. ``manifest.json`` records
the generator, the run, the counts per class, the seed and the truncation.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from . import modality as modalities
from .core import IMAGE_SUFFIXES, atomic_write_bytes
from .data.images import relative_files
from .errors import UserError
from .models.base import Generator, check_truncation, generate, truncated_normal
from .sampling import provenance, shorten

MANIFEST = "manifest.json"
CREATED_BY = "ganforge synthesize"
SEED_STRIDE = 2**32  # image i of seed S has seed S * 2**32 + i: sets of different seeds never share a latent
PROGRESS_MIN_IMAGES = 500


def image_seed(seed: int, index: int) -> int:
    """The seed of sample ``index`` in a set made with ``seed`` (what its file's provenance says)."""
    if not 0 <= seed < 2**31:
        raise UserError(f"--seed must be in 0..{2**31 - 1}, got {seed}")
    return seed * SEED_STRIDE + index


def class_names_of(generator: Generator) -> list[str]:
    """A name per class: the generator's ``meta["class_names"]``, else the class indices."""
    names = (getattr(generator, "meta", None) or {}).get("class_names")
    if names and len(names) == generator.num_classes:
        return [str(name) for name in names]
    return [str(k) for k in range(generator.num_classes)]


def folder_name(class_name: str) -> str:
    """A class name made safe as one folder name (``T-shirt/top`` -> ``T-shirt_top``)."""
    safe = class_name.replace("/", "_").replace("\\", "_").strip()
    return safe if safe not in ("", ".", "..") else f"class_{safe or 'empty'}"


def class_folders(class_names: list[str]) -> list[str]:
    """The folder of each class: :func:`folder_name`, prefixed by the index where two would clash."""
    names = [folder_name(name) for name in class_names]
    if len(set(names)) == len(names):
        return names
    return [f"{k}-{name}" for k, name in enumerate(names)]


@dataclass
class Plan:
    """How many samples to write per class (``None``: the unconditional generator's single pool).

    Attributes:
        counts: samples to generate, by class index (or ``None``), in writing order.
        class_names: a name per class index (empty for unconditional generators).
        real_counts: with ``--balance``, the samples each class already has.
        plural: how the plan names its samples (the modality's: ``images``, ``clips``).
    """

    counts: dict[int | None, int]
    class_names: list[str] = field(default_factory=list)
    real_counts: dict[int, int] | None = None
    plural: str = "images"

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def name(self, label: int | None) -> str:
        return "" if label is None else self.class_names[label]

    def labels(self) -> list[int | None]:
        """The label of every image, in index order (class by class)."""
        return [label for label, count in self.counts.items() for _ in range(count)]

    def describe(self) -> str:
        """The plan as lines of text (printed before generating)."""
        if None in self.counts:
            return f"plan: {self.counts[None]:,} {self.plural} (unconditional generator, flat folder)"
        width = max(len(n) for n in self.class_names)
        if self.real_counts is None:
            lines = [f"plan: {len(self.counts)} classes, {self.total:,} {self.plural}"]
            lines += [f"  {self.class_names[k].ljust(width)}  {n:,}" for k, n in self.counts.items()]
        else:
            target = max(self.real_counts.values())
            lines = [f"plan: {self.total:,} {self.plural} to bring every class to {target:,} (real + synthetic = total)"]
            for k, have in self.real_counts.items():
                n = self.counts.get(k, 0)
                lines.append(f"  {self.class_names[k].ljust(width)}  {have:,} + {n:,} = {have + n:,}")
        return "\n".join(lines)


def _conditional_names(generator: Generator, option: str) -> list[str]:
    if not generator.num_classes:
        raise UserError(f"{option} needs a conditional generator; this one is unconditional (use --n N)")
    return class_names_of(generator)


def plan_per_class(generator: Generator, per_class: int) -> Plan:
    """``per_class`` images of every class."""
    if per_class < 1:
        raise UserError(f"--per-class must be >= 1, got {per_class}")
    names = _conditional_names(generator, "--per-class")
    return Plan({k: per_class for k in range(len(names))}, names, plural=_plural(generator))


def plan_total(generator: Generator, n: int) -> Plan:
    """``n`` images: a flat pool (unconditional), or classes cycling ``0..K-1`` (conditional)."""
    if n < 1:
        raise UserError(f"--n must be >= 1, got {n}")
    if not generator.num_classes:
        return Plan({None: n}, plural=_plural(generator))
    k = generator.num_classes
    return Plan({c: n // k + (c < n % k) for c in range(k) if n // k + (c < n % k)}, class_names_of(generator),
                plural=_plural(generator))


def _plural(generator: Generator) -> str:
    return modalities.of(generator).plural


def read_class_counts(folder: str | Path, suffixes: tuple[str, ...] = IMAGE_SUFFIXES, plural: str = "images") -> dict[str, int]:
    """Files (of ``suffixes``: images by default) per class sub-folder of a labelled folder (``{folder name: count}``).

    Raises:
        UserError: the folder is missing, has no class sub-folders, or holds such files at its top level.
    """
    folder = Path(folder).expanduser()
    if not folder.exists():
        raise UserError(f"--balance folder '{folder}' does not exist")
    if not folder.is_dir():
        raise UserError(f"--balance '{folder}' is a file, not a folder of class sub-folders")
    loose = [p.name for p in folder.iterdir() if p.is_file() and p.suffix.lower() in suffixes]
    if loose:
        raise UserError(
            f"'{folder}' holds {len(loose)} {plural} at its top level (e.g. '{loose[0]}'); "
            f"--balance needs a labelled folder: one sub-folder of {plural} per class"
        )
    classes = sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise UserError(f"'{folder}' has no class sub-folders (expected <folder>/<class>/<{plural}>)")
    return {p.name: len(relative_files(p, suffixes)) for p in classes}


def match_classes(folder_names: list[str], class_names: list[str]) -> dict[str, int]:
    """Map class folder names to class indices: the class name, its folder-safe form, or the index.

    Raises:
        UserError: a folder that names no class of the generator.
    """
    lookup: dict[str, int] = {}
    folders = class_folders(class_names)
    for index, name in enumerate(class_names):
        for key in (str(index), folder_name(name), folders[index], name):  # names win over indices on a clash
            lookup[key] = index
    unknown = [name for name in folder_names if name not in lookup]
    if unknown:
        raise UserError(
            f"class folder(s) {', '.join(repr(u) for u in unknown)} name no class of the generator "
            f"(its classes: {', '.join(class_names)})"
        )
    mapping = {name: lookup[name] for name in folder_names}
    seen: dict[int, str] = {}
    for name, index in mapping.items():
        if index in seen:
            raise UserError(f"folders '{seen[index]}' and '{name}' both name class '{class_names[index]}'")
        seen[index] = name
    return mapping


def plan_balance(generator: Generator, real_dir: str | Path) -> Plan:
    """Top every class of ``real_dir`` up to the largest class's count (classes it lacks start at 0)."""
    names = _conditional_names(generator, "--balance")
    kind = modalities.of(generator)
    counts = read_class_counts(real_dir, kind.data_suffixes or IMAGE_SUFFIXES, kind.plural)
    mapping = match_classes(list(counts), names)
    real = {k: 0 for k in range(len(names))}
    for folder, index in mapping.items():
        real[index] = counts[folder]
    target = max(real.values())
    if target == 0:
        raise UserError(f"'{real_dir}' has class folders but no {kind.plural}: nothing to balance against")
    return Plan({k: target - n for k, n in real.items() if target > n}, names, real, plural=kind.plural)


@torch.no_grad()
def generate_images(
    generator: Generator,
    labels: list[int | None],
    seeds: list[int],
    truncation: float | None = None,
    batch_size: int = 256,
) -> torch.Tensor:
    """Samples in their stored form (the modality's: uint8 images ``[N, C, H, W]``, float clips ``[N, 1, L]``),
    sample ``i`` from ``seeds[i]`` with ``labels[i]``.

    Sample ``i`` is the one ``generator.sample(1, seed=seeds[i], labels=labels[i], truncation=...)``
    draws (the same latent), computed in batches.
    """
    z = torch.cat(
        [truncated_normal((1, generator.latent_dim), truncation, torch.Generator().manual_seed(s)) for s in seeds]
    )
    y = generator.check_labels(None if not generator.num_classes else torch.tensor(labels), len(seeds))
    return generate(generator, z, y, batch_size=batch_size, convert=modalities.of(generator).to_stored)


def prepare_out(out: str | Path, overwrite: bool) -> Path:
    """Create ``out``; a non-empty one only with ``overwrite``, and only when synthesize wrote it.

    Raises:
        UserError: ``out`` is a file, or a non-empty folder without ``overwrite``, or a
            non-empty folder that is not an earlier synthesize output (never deleted).
    """
    out = Path(out).expanduser()
    if out.exists() and not out.is_dir():
        raise UserError(f"--out '{out}' is a file, not a folder")
    if out.is_dir() and any(out.iterdir()):
        if not overwrite:
            raise UserError(f"--out '{out}' is not empty: choose a new folder, or pass --overwrite to replace it")
        if _created_by(out / MANIFEST) != CREATED_BY:
            raise UserError(
                f"--out '{out}' is not empty and holds no {MANIFEST} of an earlier synthesize run; "
                "--overwrite only replaces those: choose a new folder"
            )
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    return out


def _created_by(path: Path) -> str | None:
    try:
        return json.loads(path.read_text()).get("created_by")
    except (OSError, ValueError, AttributeError):
        return None


def synthesize(
    generator: Generator,
    plan: Plan,
    out: str | Path,
    *,
    seed: int = 0,
    truncation: float | None = None,
    batch_size: int = 256,
    overwrite: bool = False,
    progress: bool = False,
    source: str | None = None,
    file_format: str | None = None,
) -> dict[str, Any]:
    """Write ``plan``'s samples under ``out`` (class sub-folders, or flat) and ``manifest.json``.

    Files are ``<class folder>/<index:06d><suffix>`` (or ``<index:06d><suffix>``), the suffix of
    the modality's media (``.png``, ``.wav``); each carries provenance metadata: generator id,
    run, its own seed, label, class, index, truncation (and the modality's fields: ``sample_rate``).

    ``file_format`` (``png``, ``wav``), when given, must be the modality's own.

    Returns:
        The manifest (also written to ``out/manifest.json``).
    """
    from tqdm.auto import tqdm

    check_truncation(truncation, "--truncation")
    if batch_size < 1:
        raise UserError(f"--batch-size must be >= 1, got {batch_size}")
    kind = modalities.of(generator)
    if kind.media is None:
        raise UserError(f"synthesize writes files a folder data set reads; this generator makes {kind.name} samples "
                        f"(use ganforge sample --out {' or '.join('FILE' + s for s in kind.suffixes)})")
    own = kind.media.suffix.lstrip(".")
    if file_format is not None and file_format.lower().lstrip(".") != own:
        raise UserError(f"--format {shorten(file_format)}: this generator's {kind.plural} are written as {own} files")
    image_seed(seed, 0)  # range check before any file is touched
    out = prepare_out(out, overwrite)
    labels = plan.labels()
    names = class_folders(plan.class_names)
    folders = {label: (out / names[label] if label is not None else out) for label in plan.counts}
    for folder in folders.values():
        folder.mkdir(parents=True, exist_ok=True)
    quiet = not progress or len(labels) < PROGRESS_MIN_IMAGES
    with tqdm(total=len(labels), desc="synthesize", unit=kind.plural.rstrip("s"), disable=quiet) as bar:
        for start in range(0, len(labels), batch_size):
            batch_labels = labels[start : start + batch_size]
            seeds = [image_seed(seed, i) for i in range(start, start + len(batch_labels))]
            stored = generate_images(generator, batch_labels, seeds, truncation, batch_size)
            for offset, (label, sample) in enumerate(zip(batch_labels, stored)):
                index = start + offset
                metadata = provenance(generator, seed=seeds[offset], label=label, truncation=truncation, index=index,
                                      **({"class": plan.name(label)} if label is not None else {}))
                atomic_write_bytes(folders[label] / f"{index:06d}{kind.media.suffix}", kind.encode(sample, metadata))
            bar.update(len(batch_labels))
    meta = getattr(generator, "meta", None) or {}
    manifest: dict[str, Any] = {
        "created_by": CREATED_BY,
        "generator": meta.get("weights_id", ""),
        "run": meta.get("run", ""),
        "source": source,
        "seed": seed,
        "image_seed": f"seed * {SEED_STRIDE} + index",
        "truncation": truncation,
        "format": kind.media.suffix.lstrip("."),
        "shape": list(generator.output_shape),
        "total": len(labels),
        "counts": {plan.name(label): n for label, n in plan.counts.items() if label is not None},  # {} if unconditional
        "folders": {plan.name(label): folders[label].name for label in plan.counts if label is not None},
    }
    if plan.real_counts is not None:
        manifest["balance"] = {
            "real_counts": {plan.class_names[k]: n for k, n in plan.real_counts.items()},
            "target": max(plan.real_counts.values()),
        }
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


__all__ = [
    "MANIFEST",
    "Plan",
    "class_folders",
    "class_names_of",
    "folder_name",
    "generate_images",
    "image_seed",
    "match_classes",
    "plan_balance",
    "plan_per_class",
    "plan_total",
    "read_class_counts",
    "synthesize",
]
