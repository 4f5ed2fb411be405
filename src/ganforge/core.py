"""The lowest layer: what every other module needs, importing nothing of ganforge but errors.

* **Atomic files**: :func:`atomic_write_bytes` (temp file + fsync + rename + directory fsync)
  and :func:`atomic_write_files`, which replaces a whole folder of files at once, so a reader
  never sees ``generator/config.json`` beside the weights of another step;
  :func:`remove_stale_temps` deletes the temporaries of writers that were killed.
* **Fault injection** (a testing hook): :func:`fault_point` SIGKILLs the process at a named
  point when ``$GANFORGE_FAULT`` asks for it (``tests/test_kill.py``).
* **The on-disk cache**: :func:`cache_root` and :func:`cached`, used by decoded data sets,
  downloads and extracted features.
* **Devices**: :func:`resolve_device` (``auto`` -> CUDA when available).
* **Modules**: :func:`eval_mode`, a context manager that restores train/eval mode.
* **Messages**: :func:`shorten`, the prefix of bad input an error message quotes.
* **Pixels**: :func:`to_uint8` and :func:`from_uint8`, the one mapping between stored images
  (uint8 0..255) and the models' range [-1, 1]; :data:`IMAGE_SUFFIXES`.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import hashlib
import io
import json
import os
import re
import shutil
import signal
import warnings
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, TypeVar

import torch
from torch import nn

from .errors import UserError, shorten

T = TypeVar("T")

#: Bump to invalidate every :func:`cached` entry written by an older layout.
CACHE_VERSION = 2

#: File suffixes read as images (lower case; matched case-insensitively).
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".pgm", ".ppm", ".pbm", ".pnm")

# --------------------------------------------------------------------------- atomic files


def _fsync_dir(folder: Path) -> None:
    """Make a rename inside ``folder`` durable (a no-op where directories cannot be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _write_synced(path: Path, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.chmod(path, 0o644)  # mkstemp-style temporaries must not leave 0600 files behind


def atomic_write_bytes(path: str | Path, data: bytes, check: Callable[[Path], None] | None = None) -> Path:
    """Write ``data`` to ``path`` atomically: a reader sees the old file or the new one, whole.

    The bytes go to a temporary file in the same folder (``.NAME.tmp-PID.SUFFIX``), are
    fsync'ed, then renamed over ``path``; the folder is fsync'ed so the rename survives a
    power cut. ``check(temporary_path)``, when given, runs before the rename: if it raises,
    ``path`` is left as it was (``ganforge export`` verifies the file this way).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp-{os.getpid()}{path.suffix}")
    try:
        _write_synced(tmp, data)
        if check is not None:
            check(tmp)
        fault_point(f"atomic-write:{path.name}")
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)
    return path


def atomic_write_text(path: str | Path, text: str) -> Path:
    """:func:`atomic_write_bytes` of UTF-8 text."""
    return atomic_write_bytes(path, text.encode("utf-8"))


_RENAME_EXCHANGE = 2  # renameat2 flag (Linux >= 3.15): swap two paths in one step


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two existing paths with ``renameat2(RENAME_EXCHANGE)``; False where unsupported."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd = -100
    result = renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), _RENAME_EXCHANGE)
    return result == 0


def atomic_write_files(folder: str | Path, files: Mapping[str, bytes]) -> Path:
    """Replace ``folder`` by one holding exactly ``files`` (name -> bytes), all at once.

    The files are written and fsync'ed in a sibling temporary folder, which is then swapped
    with ``folder`` in one ``renameat2(RENAME_EXCHANGE)`` (Linux). Readers see the old set or
    the new set, never one file of each. Where the exchange is not available the old folder
    is renamed away first, so a reader may briefly find no folder, but never a mixed one.
    """
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = folder.with_name(f".{folder.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        for name, data in files.items():
            _write_synced(tmp / name, data)
        _fsync_dir(tmp)
        fault_point(f"atomic-swap:{folder.name}")
        if not folder.exists():
            os.rename(tmp, folder)
        elif _exchange(tmp, folder):
            shutil.rmtree(tmp)  # now the old contents
        else:
            old = folder.with_name(f".{folder.name}.old-{os.getpid()}")
            os.rename(folder, old)
            os.rename(tmp, folder)
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    os.chmod(folder, 0o755)
    _fsync_dir(folder.parent)
    return folder


#: The temporaries of :func:`atomic_write_bytes` (``.NAME.tmp-PID.SUFFIX``) and of
#: :func:`atomic_write_files` (``.FOLDER.tmp-PID``, ``.FOLDER.old-PID``); group 1 is the PID.
_TEMP_NAME = re.compile(r"^\..+\.(?:tmp|old)-(\d+)(?:\.[^.]+)?$")


def _process_alive(pid: int) -> bool:
    """Whether process ``pid`` exists (one of another user counts; so does an unanswerable question)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (OSError, OverflowError):
        return True
    return True


def is_temporary(name: str) -> bool:
    """Whether ``name`` is a temporary of :func:`atomic_write_bytes` or :func:`atomic_write_files`."""
    return _TEMP_NAME.match(name) is not None


def remove_stale_temps(folder: str | Path, *, include_own: bool = False) -> list[Path]:
    """Delete the temporaries that killed writers left in ``folder``; returns what was removed.

    A temporary is removed only when the process named in it is gone, so a live writer's
    file is never pulled from under it. This process's own temporaries are kept unless
    ``include_own``: a caller that is not writing into ``folder`` yet (the trainer, before it
    starts) passes it, because a container restarted from scratch reuses PIDs and would
    otherwise keep a dead run's leftovers forever. A missing ``folder`` has none.
    """
    try:
        entries = list(os.scandir(folder))
    except (FileNotFoundError, NotADirectoryError):
        return []
    removed = []
    for entry in entries:
        match = _TEMP_NAME.match(entry.name)
        if match is None:
            continue
        pid = int(match.group(1))
        if (pid == os.getpid() and not include_own) or (pid != os.getpid() and _process_alive(pid)):
            continue
        path = Path(entry.path)
        if entry.is_dir(follow_symlinks=False):
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
        removed.append(path)
    return removed


def read_files(folder: str | Path, names: list[str] | tuple[str, ...], attempts: int = 5) -> dict[str, bytes]:
    """The bytes of ``names`` in ``folder``, all from one version of a folder that
    :func:`atomic_write_files` may be replacing meanwhile.

    The files are opened relative to one handle of the folder (``openat``), so a swap
    between two reads cannot mix versions; a read that lost its folder to a swap is retried.

    Raises:
        FileNotFoundError: ``folder`` or one of ``names`` does not exist.
    """
    for attempt in range(attempts):
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        try:
            out = {}
            for name in names:
                file_fd = os.open(name, os.O_RDONLY, dir_fd=fd)
                with os.fdopen(file_fd, "rb") as f:
                    out[name] = f.read()
            return out
        except FileNotFoundError:
            if attempt == attempts - 1:
                raise
        finally:
            os.close(fd)
    raise AssertionError("unreachable")


# --------------------------------------------------------------------------- fault injection

#: The environment variable of :func:`fault_point`: ``POINT`` or ``POINT:N``.
FAULT_ENV = "GANFORGE_FAULT"
_fault_hits: dict[str, int] = {}


def fault_point(name: str) -> None:
    """A testing hook: SIGKILL this process the N-th time it reaches the point ``name``
    when ``$GANFORGE_FAULT`` is ``name:N`` (``name`` alone means N = 1).

    The kill tests use it to stop a run exactly between two writes. Unset (always, outside
    the tests), it costs one environment lookup. The points: ``atomic-write:FILENAME``
    (the temporary is written and synced, not yet renamed), ``atomic-swap:FOLDER`` (the new
    folder is complete, not yet swapped in), and the trainer's ``trainer:step`` (a step is
    done, its outputs not yet written), ``trainer:checkpoint`` (``latest.pt`` is written,
    ``generator/`` not yet) and ``trainer:samples`` (samples written, the report not yet).
    """
    spec = os.environ.get(FAULT_ENV)
    if not spec:
        return
    target, _, count = spec.rpartition(":")
    if not count.isdigit():
        target, count = spec, "1"
    if target != name:
        return
    _fault_hits[name] = _fault_hits.get(name, 0) + 1
    if _fault_hits[name] == int(count):
        os.kill(os.getpid(), getattr(signal, "SIGKILL", signal.SIGTERM))


# --------------------------------------------------------------------------- cache


def cache_root() -> Path:
    """Root of all ganforge caches: ``$GANFORGE_CACHE``, default ``~/.cache/ganforge``."""
    return Path(os.environ.get("GANFORGE_CACHE") or "~/.cache/ganforge").expanduser()


def cache_key_text(key: Any) -> str:
    """The canonical JSON text of a cache key (sorted keys, versioned)."""
    return json.dumps([CACHE_VERSION, key], sort_keys=True, default=str)


def _cache_entry(key: Any, namespace: str, label: str | None, suffix: str) -> tuple[Path, str]:
    """The file of ``key`` under ``cache_root()/namespace`` and the key's canonical text."""
    text = cache_key_text(key)
    digest = hashlib.sha256(text.encode()).hexdigest()[:32]
    stem = f"{safe_filename(label)}-{digest}" if label else digest
    return cache_root() / namespace / f"{stem}{suffix}", text


def _memoise(path: Path, read: Callable[[], T | None], build: Callable[[], T], encode: Callable[[T], bytes],
             namespace: str) -> T:
    if path.is_file():
        try:
            value = read()
            if value is not None:
                return value
        except Exception:  # noqa: BLE001 - a corrupt or incompatible entry is simply rebuilt
            pass
    value = build()
    try:
        atomic_write_bytes(path, encode(value))
    except OSError as err:
        warnings.warn(f"could not write the {namespace} cache in '{path.parent}' ({err.strerror or err})", stacklevel=3)
    return value


def cached(key: Any, build: Callable[[], T], *, namespace: str = "decoded", label: str | None = None) -> T:
    """``build()``, memoised on disk under ``cache_root()/namespace``.

    The value must be loadable by ``torch.load(weights_only=True)`` (tensors, numbers,
    strings, None, lists, tuples and dicts of those), which never runs pickled code. The
    full key is stored beside the value and checked on load, so a hash collision or an
    entry of another layout is rebuilt, as is a corrupt one. Writes are atomic; an
    unwritable cache only costs the speed-up (a warning).

    Args:
        key: JSON-serialisable values that identify the result (paths, options, file
            fingerprints, sample digests).
        build: computes the value on a miss.
        namespace: the cache's sub-folder (``decoded``, ``features``, ...).
        label: a readable prefix of the file name (the hash alone otherwise).
    """
    path, text = _cache_entry(key, namespace, label, ".pt")

    def read() -> T | None:
        entry = torch.load(path, map_location="cpu", weights_only=True)
        return entry["value"] if isinstance(entry, dict) and entry.get("key") == text else None

    def encode(value: T) -> bytes:
        buffer = io.BytesIO()
        torch.save({"key": text, "value": value}, buffer)
        return buffer.getvalue()

    return _memoise(path, read, build, encode, namespace)


def cached_tensors(
    key: Any, build: Callable[[], dict[str, torch.Tensor]], *, namespace: str, label: str | None = None
) -> dict[str, torch.Tensor]:
    """:func:`cached` for a flat dict of tensors, stored as safetensors (readable by any tool)."""
    from safetensors import safe_open
    from safetensors.torch import save

    path, text = _cache_entry(key, namespace, label, ".safetensors")

    def read() -> dict[str, torch.Tensor] | None:
        with safe_open(str(path), framework="pt") as f:
            if (f.metadata() or {}).get("key") != text:
                return None
            return {name: f.get_tensor(name) for name in f.keys()}

    def encode(value: dict[str, torch.Tensor]) -> bytes:
        return save({k: v.contiguous() for k, v in value.items()}, metadata={"key": text})

    return _memoise(path, read, build, encode, namespace)


def safe_filename(text: str) -> str:
    """``text`` with every run of characters outside ``[A-Za-z0-9._-]`` replaced by ``_``."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text)


# --------------------------------------------------------------------------- devices and modules


def check_writable_dir(path: str | Path, what: str) -> None:
    """Raise :class:`UserError` unless ``path`` is a folder, or can be made one, that this process may write into.

    Checked before expensive work: a run directory that is a file (``--out /etc/passwd``)
    fails here, not after the data set is decoded.
    """
    path = Path(path)
    existing = next(p for p in (path, *path.parents) if p.exists())
    shown, found = shorten(path, 160), shorten(existing, 160)
    if not existing.is_dir():
        where = "is a file" if existing == path else f"cannot be created: '{found}' is a file"
        raise UserError(f"{what} '{shown}' {where}, not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UserError(f"{what} '{shown}' is not writable (no write permission in '{found}')")


def parse_device(device: str | torch.device, key: str = "device") -> torch.device | None:
    """``device`` as a ``torch.device`` (None for ``"auto"``), parsed only: nothing is allocated or probed.

    Raises:
        UserError: not a device name.
    """
    if str(device) == "auto":
        return None
    try:
        return torch.device(device)
    except (RuntimeError, TypeError):
        raise UserError(f"{key} '{str(device)[:40]}' is not a device (use auto, cpu, cuda or cuda:N)") from None


def resolve_device(device: str | torch.device, key: str = "device") -> torch.device:
    """``"auto"`` -> CUDA when available, else CPU; anything else as given (checked).

    Args:
        key: how the caller names the setting in errors (``train.device``, ``--device``).

    Raises:
        UserError: an unknown device name, or CUDA asked for where there is none.
    """
    resolved = parse_device(device, key)
    if resolved is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"{key} is '{resolved}' but no CUDA device is available")
    return resolved


@contextlib.contextmanager
def eval_mode(module: nn.Module, training: bool = False) -> Iterator[nn.Module]:
    """Put ``module`` in eval mode (or train mode, with ``training=True``) for the block,
    restoring the mode it had after."""
    was_training = module.training
    module.train(training)
    try:
        yield module
    finally:
        module.train(was_training)


# --------------------------------------------------------------------------- pixels


def to_uint8(x: torch.Tensor) -> torch.Tensor:
    """Model output in [-1, 1] -> uint8 in [0, 255] (rounded, clamped; the inverse of :func:`from_uint8`)."""
    return x.detach().float().add(1.0).mul(127.5).round_().clamp_(0, 255).to(torch.uint8)


def from_uint8(x: torch.Tensor) -> torch.Tensor:
    """Stored images (uint8 0..255, or floats on that scale) -> float32 in [-1, 1]."""
    return x.float().div(127.5).sub_(1.0)


__all__ = [
    "IMAGE_SUFFIXES",
    "atomic_write_bytes",
    "atomic_write_files",
    "atomic_write_text",
    "read_files",
    "cache_root",
    "cached",
    "cached_tensors",
    "eval_mode",
    "fault_point",
    "from_uint8",
    "is_temporary",
    "remove_stale_temps",
    "resolve_device",
    "safe_filename",
    "to_uint8",
]
