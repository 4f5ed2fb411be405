"""WAV files with provenance: 16-bit PCM written by libsndfile (``soundfile``), read back the same way.

The provenance of a generated clip (``synthetic=true``, generator, weights id, seed, ...; the
same fields as the PNGs' text chunks) is stored in the file's RIFF ``LIST/INFO`` chunk:
``ICMT`` (comment) holds the fields as JSON, ``INAM`` (title) says ``synthetic``, ``ISFT``
names ganforge. Any audio tool shows them; :func:`read_provenance` parses them back.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..core import atomic_write_bytes
from ..errors import UserError
from ..version import __version__

#: The audio files ganforge reads (whatever libsndfile decodes; these suffixes are looked for).
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg")
#: Seconds of silence between clips concatenated into one file (``ganforge sample --out FILE.wav``).
GAP_SECONDS = 0.25


def soundfile() -> Any:
    """The ``soundfile`` module, or a one-line error saying how to install it."""
    try:
        import soundfile as sf  # libsndfile comes inside its wheels
    except ImportError:  # pragma: no cover - a dependency of ganforge
        raise UserError("audio needs the 'soundfile' package: pip install soundfile") from None
    except OSError as err:  # pragma: no cover - a wheel without its libsndfile
        raise UserError(f"the 'soundfile' package cannot load libsndfile: {err}") from None
    return sf


def wav_bytes(wave: torch.Tensor | np.ndarray, sample_rate: int, metadata: dict[str, Any] | None = None) -> bytes:
    """One mono clip ``[L]`` (or ``[1, L]``) in [-1, 1] as 16-bit PCM WAV bytes, with provenance.

    The same samples and metadata always give the same bytes.
    """
    array = wave.detach().float().cpu().numpy() if isinstance(wave, torch.Tensor) else np.asarray(wave, np.float32)
    array = np.clip(array.reshape(-1), -1.0, 1.0)
    buffer = io.BytesIO()
    sf = soundfile()
    with sf.SoundFile(buffer, "w", samplerate=int(sample_rate), channels=1, format="WAV", subtype="PCM_16") as handle:
        if metadata:
            handle.title = "synthetic" if str(metadata.get("synthetic", "")) == "true" else "ganforge"
            handle.comment = json.dumps({k: str(v) for k, v in metadata.items()}, sort_keys=True)
        handle.software = f"ganforge {__version__}"
        handle.write(array)
    return buffer.getvalue()


def write_wav(path: str | Path, wave: torch.Tensor | np.ndarray, sample_rate: int,
              metadata: dict[str, Any] | None = None) -> Path:
    """:func:`wav_bytes` written atomically to ``path``."""
    atomic_write_bytes(path, wav_bytes(wave, sample_rate, metadata))
    return Path(path)


def concatenate(waves: torch.Tensor, sample_rate: int, gap: float = GAP_SECONDS) -> torch.Tensor:
    """Clips ``[N, 1, L]`` (or ``[N, L]``) one after another, ``gap`` seconds of silence between them: ``[M]``."""
    flat = waves.reshape(len(waves), -1).float()
    silence = torch.zeros(int(round(gap * sample_rate)))
    parts: list[torch.Tensor] = []
    for i, clip in enumerate(flat):
        if i:
            parts.append(silence)
        parts.append(clip)
    return torch.cat(parts) if parts else torch.zeros(0)


def read_wav(path: str | Path) -> tuple[np.ndarray, int]:
    """``(samples float32 [L] or [L, channels], sample rate)`` of any file libsndfile reads (WAV, FLAC, OGG).

    Raises:
        UserError: the file is missing or not audio libsndfile can decode (one line naming it).
    """
    sf = soundfile()
    try:
        data, rate = sf.read(str(path), dtype="float32", always_2d=False)
    except (sf.LibsndfileError, RuntimeError, OSError, ValueError) as err:
        raise UserError(f"cannot read audio file '{path}': {str(err).splitlines()[0] if str(err) else type(err).__name__}") from None
    return data, int(rate)


def read_provenance(path: str | Path) -> dict[str, str]:
    """The provenance fields ganforge wrote into a WAV's ``INFO/ICMT`` chunk ({} if there are none)."""
    sf = soundfile()
    try:
        with sf.SoundFile(str(path)) as handle:
            comment = handle.comment
    except (sf.LibsndfileError, RuntimeError, OSError) as err:
        raise UserError(f"cannot read audio file '{path}': {err}") from None
    try:
        fields = json.loads(comment) if comment else {}
    except json.JSONDecodeError:
        return {}
    return {str(k): str(v) for k, v in fields.items()} if isinstance(fields, dict) else {}
