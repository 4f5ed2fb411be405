"""Video metrics: the Fréchet video distance, per-frame quality, identity consistency and motion.

* ``fvd``: the Fréchet distance of real and generated clips in the features of a video
  classifier (by default the shipped ``moving-digits`` one: an FVD analogue, since the I3D
  weights of the published FVD are not available offline). It sees motion as well as frames.
* ``frame-fid``: the Fréchet distance of single frames, each cropped around its digit
  (:func:`~ganforge.metrics.video.digit_crops`), in the ``digits`` classifier's features.
* ``identity``: of generated clips, the share whose frames the ``digits`` classifier reads as
  one digit throughout (``identity_consistency``), the share of frames it reads with a top
  probability over 0.9 (``confident_frames``), and for labelled clips the share of frames it
  reads as their label (``frame_accuracy``).
* ``motion``: mean speed and acceleration of the digit's centre of mass, generated beside real.

Importing this module registers them.
"""

from __future__ import annotations

from typing import Any

import torch

from ..extractors import create as create_extractor
from ..metrics import fid_from_features
from ..metrics.video import centres_of_mass, confident_share, digit_crops, identity_consistency, motion_stats
from .registry import EvalInputs, register_metric
from .sources import Source, require_modality

#: The single-digit classifier that reads frames, and the confidence a frame's reading must pass.
FRAME_READER = "digits"
CONFIDENCE = 0.9
#: Frames read at once.
FRAME_BATCH = 4096


def _video(source: Source | None, metric: str) -> Source:
    return require_modality(source, "video", metric, "video clips")


def frame_readings(source: Source) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``digits`` classifier's features ``[N * T, D]`` and logits ``[N, T, 10]`` of every frame's digit crop."""
    clips = source.data
    n, t = clips.shape[:2]
    crops = digit_crops(clips, max(8, min(clips.shape[-2:]) // 2))  # the digits' size in moving-digits
    reader = create_extractor(FRAME_READER).eval()
    parts = [reader(crops[i : i + FRAME_BATCH]) for i in range(0, len(crops), FRAME_BATCH)]
    features = torch.cat([p.features for p in parts])
    logits = torch.cat([p.logits for p in parts])  # type: ignore[misc]
    return features, logits.view(n, t, -1)


@register_metric("fvd", primary="fvd", higher_is_better=False, aliases=("frechet-video-distance",))
def _fvd(inputs: EvalInputs) -> dict[str, Any]:
    """Fréchet video distance: real and generated clips in the video classifier's features (an FVD analogue)."""
    _video(inputs.fake, "fvd")
    return {"fvd": fid_from_features(*inputs.pair())}


@register_metric("frame-fid", primary="frame_fid", higher_is_better=False, uses_features=False)
def _frame_fid(inputs: EvalInputs) -> dict[str, Any]:
    """FID of single frames (digit crops) in the digits classifier's features."""
    fake, real = _video(inputs.fake, "frame-fid"), _video(inputs.real, "frame-fid")
    return {"frame_fid": fid_from_features(frame_readings(real)[0], frame_readings(fake)[0])}


@register_metric("identity", primary="identity_consistency", higher_is_better=True, needs_real=False, uses_features=False)
def _identity(inputs: EvalInputs) -> dict[str, Any]:
    """Share of clips read as one digit in every frame, of frames read with confidence > 0.9, and (labelled clips) of
    frames read as their label."""
    fake = _video(inputs.fake, "identity")
    _, logits = frame_readings(fake)
    predictions = logits.argmax(dim=2)
    out = {"identity_consistency": identity_consistency(predictions),
           "confident_frames": confident_share(logits.flatten(0, 1), CONFIDENCE)}
    labels = fake.info.get("labels")
    names = [str(c) for c in fake.info.get("class_names") or range(10)]
    if labels is not None and any(name.isdigit() for name in names):  # not for pseudo-labels (recipe selfcond)
        digit = torch.tensor([int(names[k]) if names[k].isdigit() else -1 for k in labels.long().tolist()])
        out["frame_accuracy"] = float((predictions == digit[:, None]).double().mean())
    return out


@register_metric("motion", primary="motion_acceleration", higher_is_better=False, uses_features=False)
def _motion(inputs: EvalInputs) -> dict[str, Any]:
    """Mean speed and acceleration of the digit's centre of mass (pixels a frame), generated beside real."""
    fake, real = _video(inputs.fake, "motion"), _video(inputs.real, "motion")
    generated, data = motion_stats(centres_of_mass(fake.data)), motion_stats(centres_of_mass(real.data))
    return {"motion_speed": generated["speed"], "motion_speed_real": data["speed"],
            "motion_acceleration": generated["acceleration"], "motion_acceleration_real": data["acceleration"]}


__all__ = ["CONFIDENCE", "FRAME_READER", "frame_readings"]
