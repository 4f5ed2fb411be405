"""``hf://owner/repo[@revision]`` paths: generator folders on the Hugging Face Hub, read through its cache.

A path that starts with ``hf://`` names a model repository laid out as :mod:`ganforge.sharing`
writes it (``config.json``, ``model.safetensors``, ``README.md``). :func:`resolve` downloads its
files once into the Hub's cache (``$HF_HOME/hub``; ``pip install 'ganforge[hub]'``) and returns the
cached snapshot folder; with ``HF_HUB_OFFLINE=1`` it reads the cache only. Every command that
takes a run or generator folder takes such a path (they all load through
:func:`ganforge.rundir.load_generator`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .errors import UserError
from .models.base import GENERATOR_CONFIG, GENERATOR_WEIGHTS

PREFIX = "hf://"
#: The files of a shared generator (the model card is read by people, not by ganforge).
FILES = (GENERATOR_CONFIG, GENERATOR_WEIGHTS, "README.md")


def is_hub_path(path: str | Path) -> bool:
    return str(path).startswith(PREFIX)


def parse(path: str) -> tuple[str, str | None]:
    """``hf://owner/repo@rev`` -> ``("owner/repo", "rev")`` (revision None: the default branch)."""
    spec = path[len(PREFIX):]
    repo, _, revision = spec.partition("@")
    if repo.count("/") != 1 or not all(repo.split("/")):
        raise UserError(f"'{path}': a hub path is hf://OWNER/REPO or hf://OWNER/REPO@REVISION")
    return repo, revision or None


def huggingface_hub() -> Any:
    try:
        import huggingface_hub
    except ImportError:
        raise UserError("hf:// paths and ganforge push need huggingface_hub: pip install 'ganforge[hub]'") from None
    return huggingface_hub


def resolve(path: str | Path) -> Path:
    """The local folder of ``path``: a hub path's cached snapshot (downloaded on first use), else the path itself."""
    if not is_hub_path(path):
        return Path(path)
    repo, revision = parse(str(path))
    hub = huggingface_hub()
    try:
        return Path(hub.snapshot_download(repo, revision=revision, allow_patterns=list(FILES)))
    except Exception as err:  # noqa: BLE001 - offline, missing repository, no access: one line either way
        reason = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise UserError(f"cannot get '{path}' from the Hub (or its cache): {reason}") from None
