"""Safeguards against misuse of generated media: invisible watermarks, signed C2PA manifests, ``ganforge verify``."""

from __future__ import annotations

from typing import Any


def is_generated(metadata: dict[str, Any] | None) -> bool:
    """Whether an output's provenance says it was generated (``synthetic=true``): what gets marked and signed."""
    return str((metadata or {}).get("synthetic", "")).lower() == "true"
