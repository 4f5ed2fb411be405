"""``ganforge verify``: what a file says about where it came from, layer by layer.

* **metadata**: the provenance ganforge writes in a PNG's text chunks (``synthetic``,
  ``generator``, ``run``, ``seed``, ...). Proves nothing on its own (anyone can write or strip
  it), but names the generator to check the watermark against.
* **watermark**: the invisible mark (:mod:`ganforge.safeguards.watermark`) read under the
  default key or ``--watermark-key``: found or not, the 32-bit generator id it carries, whether
  its CRC holds, the bits' mean margin, and whether the id matches the metadata's generator.
* **c2pa**: a signed C2PA manifest (:mod:`ganforge.safeguards.manifest`): the validation state
  (``Trusted`` with ``--trust-anchors`` naming its CA, ``Valid`` for a good signature by an
  unknown CA, ``Invalid`` when the file changed since signing), the signer, and ganforge's assertion.
* **detector** (with a trained detector, :mod:`ganforge.safeguards.detector`): the probability
  that the pixels are synthetic, for files whose other layers were stripped.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from PIL import Image, UnidentifiedImageError

from ..errors import UserError
from . import manifest, watermark


class Scorer(Protocol):
    """What ``verify`` asks of a detector (:class:`ganforge.safeguards.detector.Detector`)."""

    def report(self, pixels: np.ndarray) -> dict[str, Any]: ...

#: Metadata fields ganforge writes that the report repeats (others are kept under ``other``).
PROVENANCE_FIELDS = ("synthetic", "generator", "run", "seed", "label", "truncation", "watermark", "watermark_key_id")


def read_image(path: Path) -> tuple[np.ndarray, dict[str, str], str]:
    """The pixels (uint8 ``[H, W]`` or ``[H, W, C]``), text metadata and MIME type of an image file; a one-line
    error otherwise."""
    if not path.is_file():
        raise UserError(f"no file at '{path}'")
    try:
        with Image.open(path) as image:
            image.load()
            info = {str(k): str(v) for k, v in image.info.items() if isinstance(v, (str, bytes)) and k != "icc_profile"}
            info.update(_gif_provenance(image.info.get("comment")))
            mime = Image.MIME.get(image.format or "", "image/png")
            if image.mode not in ("L", "RGB", "RGBA"):
                image = image.convert("RGBA" if "A" in image.mode else "RGB")
            return np.asarray(image), info, mime
    except (UnidentifiedImageError, OSError, SyntaxError) as err:
        raise UserError(f"'{path}' is not an image ganforge can read ({err.__class__.__name__}: {err})") from None


def _gif_provenance(comment: object) -> dict[str, str]:
    """The provenance ganforge writes as JSON in a GIF's comment (clips, latent walks); {} for anything else."""
    try:
        fields = json.loads(comment.decode() if isinstance(comment, bytes) else str(comment or ""))
    except (ValueError, UnicodeDecodeError):
        return {}
    return {str(k): str(v) for k, v in fields.items()} if isinstance(fields, dict) else {}


def verify_file(
    path: str | Path, key: str | None = None, trust_anchors: str | None = None, detector: Scorer | None = None,
) -> dict[str, Any]:
    """The report of one file: ``metadata``, ``watermark`` and ``c2pa`` sections, and ``detector`` when one is
    given (see the module docstring)."""
    path = Path(path)
    pixels, info, mime = read_image(path)
    metadata = {k: info[k] for k in PROVENANCE_FIELDS if k in info}
    reading = watermark.read(pixels, key or watermark.DEFAULT_KEY)
    mark = reading.as_dict()
    claimed = metadata.get("generator", "")
    if reading.found and claimed:
        mark["matches_metadata"] = reading.intact and claimed.lower().startswith(reading.generator_id)
    report = {"file": str(path), "size": [int(pixels.shape[1]), int(pixels.shape[0])],
              "metadata": {"present": bool(metadata), **metadata}, "watermark": mark,
              "c2pa": manifest.read(path, trust_anchors, mime)}
    if detector is not None:
        report["detector"] = detector.report(pixels)
    return report


def verify_bytes(data: bytes, name: str = "upload", key: str | None = None, detector: Scorer | None = None) -> dict[str, Any]:
    """:func:`verify_file` of a file's bytes (an upload), reported under ``name``; ``key``: the active watermark key."""
    if not data:
        raise UserError("no file: send the image's bytes as the request body")
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "upload"
        path.write_bytes(data)
        try:
            report = verify_file(path, key or watermark.active_key(), detector=detector)
        except UserError as err:
            raise UserError(str(err).replace(f"'{path}'", name)) from None
    report["file"] = name
    return report


def summary(report: dict[str, Any]) -> str:
    """One line a person reads: what each layer found."""
    meta, mark = report["metadata"], report["watermark"]
    said = "metadata: synthetic" if meta.get("synthetic") == "true" else ("metadata: present" if meta["present"] else "metadata: none")
    if meta.get("generator"):
        said += f" (generator {meta['generator']})"
    if meta.get("watermark") == "off":
        said += ", written with --no-watermark"
    if mark["found"]:
        found = f"watermark: found, generator {mark['generator_id']}" + ("" if mark["intact"] else " (CRC fails: id unsure)")
        if "matches_metadata" in mark:
            found += ", matches the metadata" if mark["matches_metadata"] else ", DIFFERS from the metadata"
    else:
        found = "watermark: none under this key"
    c2pa = report.get("c2pa", {})
    if c2pa.get("present"):
        signer = c2pa["signer"].get("common_name") or c2pa["signer"].get("issuer") or "unknown signer"
        signed = f"C2PA: {c2pa['state'].lower()} signature by {signer}" + ("" if c2pa["created"] else ", not marked as generated")
    else:
        signed = "C2PA: none" if c2pa.get("present") is False else "C2PA: not checked (pip install 'ganforge[c2pa]')"
    line = f"{report['file']}: {said}; {found} (confidence {mark['confidence']:.2f}); {signed}"
    if "detector" in report:
        line += f"; detector: P(synthetic) {report['detector']['probability']:.3f}"
    return line
