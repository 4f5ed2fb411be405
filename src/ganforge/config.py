"""Typed run configuration: the schema, YAML presets and ``key=value`` overrides.

A config is a tree of dataclasses. :func:`from_dict` converts plain YAML data into it and
rejects unknown keys, wrong types and out-of-range values with a one-line
:class:`ConfigError` that names the key and suggests the nearest valid one.

Every numeric field declares its :class:`Range` (``field(metadata={"range": ...})``, written
:func:`ranged`), checked in one place, :func:`coerce`: a number must be finite and inside its
range (a list of numbers element-wise), an ``int`` field takes no fractions and no field takes
a bool. Recipe options (``Recipe.Options`` dataclasses) declare theirs the same way; model and
regularizer options name theirs in tables beside their registries.

This module imports no registry: names (data sets, losses, recipes, metrics, ...) and the
family-specific model options are checked by :func:`ganforge.validate.check_config`, and
:func:`ganforge.load_config` (= :func:`ganforge.validate.load_config`) is the loader that does
both. :func:`parse_config` here only parses.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import re
import types
import typing
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Callable, Collection, Union

import yaml

from .errors import ConfigError, shorten
from .registry import did_you_mean

# --------------------------------------------------------------------------- value ranges


@dataclass(frozen=True)
class Range:
    """The values a numeric setting accepts: finite, ``lo <= v <= hi`` (``<`` at an open end)."""

    lo: float
    hi: float
    lo_open: bool = False
    hi_open: bool = False

    def __str__(self) -> str:
        return f"{'(' if self.lo_open else '['}{show(self.lo)}, {show(self.hi)}{')' if self.hi_open else ']'}"

    def __contains__(self, value: object) -> bool:
        return isinstance(value, (int, float)) and not isinstance(value, bool) and self.problem(value) is None

    def problem(self, value: float) -> str | None:
        """Why ``value`` is outside the range (``"must be >= 1"``), or None when it is inside."""
        if isinstance(value, float) and not math.isfinite(value):
            return "must be a finite number"
        if value < self.lo or (self.lo_open and value == self.lo):
            return f"must be {'>' if self.lo_open else '>='} {show(self.lo)}"
        if value > self.hi or (self.hi_open and value == self.hi):
            return f"must be {'<' if self.hi_open else '<='} {show(self.hi)}"
        return None

    def check(self, value: Any, key: str, subject: str = "config key '{}'") -> Any:
        """``value`` unchanged when inside (None passes; lists element-wise), else a one-line :class:`ConfigError`.

        The message names ``subject.format(key)``, the value (shortened) and the range.
        """
        items = value if isinstance(value, list) else [value]
        for i, item in enumerate(items):
            if isinstance(item, (int, float)) and not isinstance(item, bool) and (why := self.problem(item)):
                name = f"{key}[{i}]" if isinstance(value, list) else key
                bounds = f" (range {self})" if math.isfinite(self.lo) or math.isfinite(self.hi) else ""
                raise ConfigError(f"{subject.format(name)} {why}, got {show(item)}{bounds}")
        return value


def show(value: Any) -> str:
    """A number (or anything) as an error message quotes it: short, ``1e+30`` rather than 31 digits."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value)) if abs(value) >= 1e6 else repr(value)
    if isinstance(value, int) and not isinstance(value, bool) and len(str(value)) > 20:
        return f"{value:.3g}"
    return shorten(repr(value) if isinstance(value, str) else value)


def ranged(default: Any = dataclasses.MISSING, lo: float = -math.inf, hi: float = math.inf, *,
           lo_open: bool = False, hi_open: bool = False, default_factory: Any = dataclasses.MISSING) -> Any:
    """A dataclass field whose numbers must lie in ``Range(lo, hi, lo_open, hi_open)`` (see :func:`coerce`)."""
    metadata = {"range": Range(lo, hi, lo_open, hi_open)}
    return field(default=default, default_factory=default_factory, metadata=metadata)


def field_range(f: dataclasses.Field) -> Range | None:
    """The declared :class:`Range` of a dataclass field, or None."""
    return f.metadata.get("range")


#: Upper bounds shared by several keys (sizes beyond them exhaust memory long before they train).
MAX_SIDE = 4096  # image side in pixels
MAX_BATCH = 65536
MAX_STEPS = 10**9
MAX_WEIGHT = 1e6  # loss weights and penalties
#: Seeds every random stream accepts (torch takes < 2**64; the trainer adds small offsets).
SEED_RANGE = Range(0, 2**63 - 1)


@dataclass
class DataConfig:
    """Which data set to train on and how to prepare it."""

    name: str = "digits"
    root: str | None = None  # local folder; None = the data set's default (download if needed)
    split: str = "train"
    resolution: int | None = ranged(None, 1, MAX_SIDE)  # square side in pixels; None = the data set's native size
    channels: int | None = ranged(None, 1, 3)  # 1 (grey) or 3 (RGB); None = the data set's native channels
    hflip: bool = False  # random horizontal flips of real images (joint for image-to-image pairs)
    crop: int | None = ranged(None, 1, MAX_SIDE)  # random crop x crop windows at batch time (pix2pix jitter; joint for pairs); None = off
    direction: str = "AtoB"  # image-to-image data: AtoB (source A, target B) or BtoA
    unpaired: bool = False  # paired image-to-image data: draw sources and targets independently (CycleGAN)
    max_samples: int | None = ranged(None, 1, 10**9)  # keep only the first N samples (low-data studies, quick tests)
    sample_rate: int | None = ranged(None, 1000, 192_000)  # audio: resample every clip to this rate (Hz); None = the data set's
    length: int | None = ranged(None, 256, 10**7)  # audio: crop or zero-pad every clip to this many samples; None = the data set's
    label_pattern: str | None = None  # audio-folder: a regular expression whose first group is a file's label
    max_length: int | None = ranged(None, 1, 4096)  # text: longest sentence in words (longer lines left out); None = the data set's
    vocab_size: int | None = ranged(None, 8, 10**6)  # text: ids in all (4 special + most frequent words; others read <unk>); None = all
    frames: int | None = ranged(None, 2, 1024)  # video: frames per clip; None = the data set's (16)
    num_digits: int | None = ranged(None, 1, 2)  # moving-digits: digits in each clip; None = 1
    frame_stride: int | None = ranged(None, 1, 1000)  # video-folder: keep one frame in this many; None = 1
    columns: dict[str, str] | None = None  # tables: {column: kind} (continuous, discrete, date, categorical, boolean); None = inferred
    target: str | None = None  # tables: the column to condition on and to predict (TSTR); None = the data set's
    download: bool = True  # allow downloading when no local copy exists


@dataclass
class ModelConfig:
    """A registered model family and its constructor options (see ``ganforge models``)."""

    name: str = "dcgan"
    conditional: bool = False  # feed class labels to both networks
    pack: int = ranged(1, 1, 64)  # PacGAN: the discriminator judges m samples at once (1 = off)
    options: dict[str, Any] = field(default_factory=dict)  # family-specific keyword arguments


@dataclass
class LossConfig:
    """Adversarial loss (a pure function of logits, see ``ganforge.losses``)."""

    name: str = "nonsaturating"
    # Penalties by name with their options, e.g. {gp: {weight: 10}, r1: {weight: 1, every: 16}}
    # (see ``ganforge.losses.REGULARIZERS``: gp, r1, r2, dragan, bcr-real, bcr-fake).
    regularizers: dict[str, Any] = field(default_factory=dict)
    weight_clip: float | None = ranged(None, 0, 1e3, lo_open=True)  # WGAN: clip discriminator weights to [-c, c] after each update


@dataclass
class AugmentConfig:
    """Differentiable augmentation of everything the discriminator sees (see ``ganforge.augment``)."""

    name: str = "none"  # none | diffaugment | ada
    policy: str = "color,translation,cutout"  # diffaugment ops
    p: float = ranged(0.0, 0, 1)  # ada: initial (or, with target null, fixed) probability
    target: float | None = ranged(0.6, -1, 1, lo_open=True, hi_open=True)  # ada: wanted E[sign(D(real))]; null keeps p fixed
    speed_kimg: float = ranged(100.0, 0, 1e6, lo_open=True)  # ada: thousands of images for p to move from 0 to 1
    interval: int = ranged(4, 1, 10**6)  # ada: discriminator updates between adjustments of p


@dataclass
class OptimConfig:
    """Optimizers for both networks; separate learning rates and betas give TTUR."""

    name: str = "adam"  # adam | rmsprop
    g_lr: float = ranged(2e-4, 0, 10, lo_open=True)
    d_lr: float = ranged(2e-4, 0, 10, lo_open=True)
    g_betas: list[float] = ranged(lo=0, hi=1, hi_open=True, default_factory=lambda: [0.5, 0.999])  # Adam's (beta1, beta2)
    d_betas: list[float] = ranged(lo=0, hi=1, hi_open=True, default_factory=lambda: [0.5, 0.999])
    weight_decay: float = ranged(0.0, 0, 1)
    lr_schedule: str = "constant"  # constant | linear | cosine (training/schedule.py)
    decay_start: float = ranged(0.5, 0, 1)  # fraction of train.steps after which the schedule decays to 0


@dataclass
class PrivacyConfig:
    """Differentially private training of the critic (DP-SGD with Opacus; ``training/privacy.py``)."""

    epsilon: float | None = ranged(None, 0, 1e4, lo_open=True)  # target epsilon at the end of training; None = not private
    delta: float = ranged(1e-5, 0, 1, lo_open=True, hi_open=True)  # the (epsilon, delta) guarantee's delta
    max_grad_norm: float = ranged(1.0, 0, 1e6, lo_open=True)  # per-sample gradient clipping norm C
    accountant: str = "rdp"  # rdp | prv | gdp (Opacus's privacy accountants)


@dataclass
class TrainConfig:
    """The training loop: length, batch, schedule, logging and checkpoint cadence."""

    steps: int = ranged(2000, 1, MAX_STEPS)  # generator updates
    batch_size: int = ranged(64, 1, MAX_BATCH)
    n_critic: int = ranged(1, 1, 1000)  # discriminator updates per generator update
    seed: int = ranged(0, SEED_RANGE.lo, SEED_RANGE.hi)
    ema_decay: float = ranged(0.999, 0, 1, hi_open=True)  # EMA of generator weights; 0 disables
    ema_start: int = ranged(0, 0, MAX_STEPS)  # step from which the EMA starts averaging (a copy before that)
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    precision: str = "fp32"  # fp32 | bf16 | fp16 (autocast of the forward passes; fp16 with a GradScaler, CUDA only)
    channels_last: bool = True  # NHWC memory format for conv nets (see benchmarks/step_options.py)
    compile: bool = False  # torch.compile the networks (falls back to eager if compilation fails)
    threads: int | None = ranged(None, 0, 1024)  # torch intra-op threads; None (or 0) = torch's default (cores / processes under torchrun)
    sync_batchnorm: bool = False  # multi-process runs: BatchNorm statistics over the global batch
    log_every: int = ranged(50, 1, MAX_STEPS)
    sample_every: int = ranged(500, 1, MAX_STEPS)
    sample_count: int = ranged(64, 1, 10_000)  # size of the fixed latent batch rendered to samples/
    checkpoint_every: int = ranged(1000, 1, MAX_STEPS)
    keep_checkpoints: bool = False  # also keep checkpoints/step-NNNNNN.pt
    tensorboard: bool = False  # the same as "tensorboard" in loggers
    loggers: list[str] = field(default_factory=lambda: ["jsonl"])  # jsonl (always), tensorboard, wandb, mlflow
    progress: bool = True
    # Sign the sample grids with a C2PA manifest (PEM files; as --sign-cert/--sign-key; pip install 'ganforge[c2pa]')
    sign_cert: str | None = None
    sign_key: str | None = None
    privacy: PrivacyConfig = field(default_factory=PrivacyConfig)  # DP-SGD of the critic (recipe ctgan)
    # Fine-tuning: start from a trained run's G and D (its checkpoint) or a generator folder's G (D fresh)
    init_from: str | None = None


@dataclass
class EvalConfig:
    """Evaluation during training, and the defaults of ``ganforge eval RUN_DIR``.

    The first metric is the primary one: it picks ``checkpoints/best.pt`` (lower is better
    for fid/kid, higher for is/pr/dc/modes).
    """

    every: int = ranged(0, 0, MAX_STEPS)  # evaluate every N generator steps (and at the end); 0 = off
    metrics: list[str] = field(default_factory=lambda: ["fid"])  # fid, kid, is, pr, dc, modes
    n: int = ranged(5000, 2, 10**7)  # generated samples (and at most this many real ones)
    extractor: str = "inception"  # registered feature extractor (inception, digits, mnist, ...)
    extractor_weights: str | None = None  # weights file for the extractor; None = its default
    batch_size: int = ranged(100, 1, MAX_BATCH)  # images per batch when sampling and extracting features


@dataclass
class Config:
    """A complete, resolved run configuration (what ``config.yaml`` holds)."""

    name: str = "run"
    recipe: str = "gan"
    # Options of the recipe (e.g. unroll_steps for 'unrolled'); see ``ganforge recipes``.
    recipe_options: dict[str, Any] = field(default_factory=dict)
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)

    def to_dict(self) -> dict[str, Any]:
        """Plain data, with model options flattened into the ``model`` section."""
        out = dataclasses.asdict(self)
        options = out["model"].pop("options")
        out["model"].update(options)
        return out

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)


# --------------------------------------------------------------------------- parsing


class _Loader(yaml.SafeLoader):
    """SafeLoader that also reads ``1e-4`` as a float (YAML 1.1 insists on ``1.0e-4``)."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
        |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
        |\.[0-9_]+(?:[eE][-+]?[0-9]+)?
        |[-+]?\.(?:inf|Inf|INF)
        |\.(?:nan|NaN|NAN))$""",
        re.X,
    ),
    list("-+0123456789."),
)


def yaml_load(text: str) -> Any:
    """Parse YAML text safely (no Python objects), with scientific-notation floats."""
    return yaml.load(text, Loader=_Loader)  # noqa: S506 - _Loader is a SafeLoader


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", str(tp)).replace("NoneType", "null")


def coerce(value: Any, tp: Any, key: str, within: Range | None = None) -> Any:
    """Check ``value`` against the annotation ``tp`` (lenient only where YAML is: int -> float).

    Numbers must be finite; with ``within``, inside that range too (lists element-wise).
    """
    out = _coerce(value, tp, key)
    if within is None:
        within = Range(-math.inf, math.inf)  # finite, at least
    return within.check(out, key)


def _coerce(value: Any, tp: Any, key: str) -> Any:
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, key)
            except ConfigError as err:
                errors.append(err)
        raise errors[0] if len(errors) == 1 else ConfigError(
            f"config key '{key}' must be one of {' | '.join(_type_name(a) for a in args)}, got {show(value)}"
        )
    if origin is list:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"config key '{key}' must be a list, got {show(value)}")
        (item,) = typing.get_args(tp) or (Any,)
        return [_coerce(v, item, f"{key}[{i}]") for i, v in enumerate(value)]
    if origin is dict or tp is Any:
        return value
    if tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
    elif tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    elif tp is str:
        if isinstance(value, str):
            return value
    elif dataclasses.is_dataclass(tp):
        return build_dataclass(tp, value, key)
    raise ConfigError(f"config key '{key}' must be {_type_name(tp)}, got {show(value)}")


def build_dataclass(cls: type, data: Any, prefix: str) -> Any:
    """Build dataclass ``cls`` from the mapping ``data``, coercing every field (see :func:`coerce`).

    Unknown keys are errors naming ``prefix.key``, except in :class:`ModelConfig`, where they
    are the family's options (collected in ``options``, checked later against the factory).
    """
    if not isinstance(data, dict):
        raise ConfigError(f"config section '{prefix or 'root'}' must be a mapping, got {show(data)}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    names = list(fields)
    kwargs: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    for key, value in data.items():
        dotted = f"{prefix}.{key}" if prefix else str(key)
        if key not in names or (cls is ModelConfig and key == "options"):
            if cls is ModelConfig:  # family options, checked by ganforge.validate against the factory
                extra[key] = value
                continue
            raise ConfigError(f"unknown config key '{dotted}'{did_you_mean(str(key), names)}")
        kwargs[key] = coerce(value, hints[key], dotted, field_range(fields[key]))
    obj = cls(**kwargs)
    if cls is ModelConfig:
        obj.options = dict(extra)
    return obj


def from_dict(data: dict[str, Any]) -> Config:
    """Build a :class:`Config` from plain data, raising :class:`ConfigError` on any mistake it can see.

    Types and value ranges are checked here; names and model options need the registries:
    pass the result through :func:`ganforge.validate.check_config`.
    """
    config = build_dataclass(Config, data, "")
    validate(config)
    return config


def _one_of(key: str, value: str, choices: list[str]) -> None:
    if value not in choices:
        raise ConfigError(
            f"config key '{key}' must be {', '.join(choices[:-1])} or {choices[-1]}, got '{value}'"
            f"{did_you_mean(value, choices)}"
        )


def validate(config: Config) -> None:
    """Check what ties values together or names a choice: precision, channels, pack vs batch size, ...

    Each number's own range was checked while parsing (:func:`coerce`).
    """
    t = config.train
    if config.optim.name not in OPTIMIZERS:
        raise ConfigError(
            f"unknown optimizer '{config.optim.name}'{did_you_mean(config.optim.name, list(OPTIMIZERS))}"
            f" (available: {', '.join(OPTIMIZERS)})"
        )
    for key in ("g_betas", "d_betas"):
        if len(getattr(config.optim, key)) != 2:
            raise ConfigError(f"config key 'optim.{key}' must be a list of two floats")
    _one_of("train.precision", t.precision, list(PRECISIONS))
    _one_of("train.privacy.accountant", t.privacy.accountant, list(ACCOUNTANTS))
    if config.data.channels not in (None, 1, 3):
        raise ConfigError(f"config key 'data.channels' must be 1 or 3, got {config.data.channels}")
    d = config.data
    if d.crop is not None and d.resolution is not None and d.crop > d.resolution:
        raise ConfigError(f"config key 'data.crop' ({d.crop}) must be <= data.resolution ({d.resolution})")
    _one_of("data.direction", config.data.direction, ["AtoB", "BtoA"])
    if t.batch_size % config.model.pack:
        raise ConfigError(
            f"train.batch_size ({t.batch_size}) must be a multiple of model.pack ({config.model.pack})"
        )


#: optim.name values (training/recipes.py make_optimizer builds them).
OPTIMIZERS = ("adam", "rmsprop")
#: train.privacy.accountant values (Opacus's accountants: Renyi DP, privacy random variables, Gaussian DP).
ACCOUNTANTS = ("rdp", "prv", "gdp")
#: train.precision values (training/recipes.py AMP_DTYPES maps them to autocast dtypes).
PRECISIONS = ("fp32", "bf16", "fp16")


# --------------------------------------------------------------------------- presets


def preset_dir() -> Path:
    """The folder of bundled YAML presets (``ganforge/configs``)."""
    return Path(str(resources.files("ganforge") / "configs"))


def preset_names() -> list[str]:
    return sorted(p.stem for p in preset_dir().glob("*.yaml"))


def preset_path(name: str) -> Path:
    """The bundled preset ``name``, or raise with a suggestion."""
    path = preset_dir() / f"{name}.yaml"
    if not path.is_file():
        names = preset_names()
        raise ConfigError(
            f"unknown preset '{name}'{did_you_mean(name, names)} (available: {', '.join(names)})"
        )
    return path


def read_yaml(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file '{path}' does not exist")
    try:
        data = yaml_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise ConfigError(f"config file '{path}' is not valid YAML: {str(err).splitlines()[0]}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"config file '{path}' must hold a mapping at the top level")
    return data


def parse_override(text: str) -> tuple[str, Any]:
    """``"train.steps=100"`` -> ``("train.steps", 100)``; the value is parsed as YAML."""
    if "=" not in text:
        raise ConfigError(f"override '{text}' must look like key=value (e.g. train.steps=100)")
    key, raw = text.split("=", 1)
    key = key.strip()
    if not key:
        raise ConfigError(f"override '{text}' has an empty key")
    try:
        value = yaml_load(raw) if raw.strip() else None
    except yaml.YAMLError:
        value = raw
    return key, value


#: ``accepted(family) -> option names``: how :func:`apply_overrides` learns a model family's options
#: (``ganforge.validate`` passes the registry's; config.py itself knows no family).
AcceptedOptions = Callable[[str], Collection[str]]


def apply_overrides(
    data: dict[str, Any],
    overrides: list[str] | dict[str, Any],
    accepted_options: AcceptedOptions | None = None,
) -> dict[str, Any]:
    """Return a copy of ``data`` with dotted-key overrides applied.

    When ``model.name`` is overridden and ``accepted_options`` is given, model options
    inherited from the preset that the new family does not accept are dropped (options set
    explicitly are kept, to be checked). Without it nothing is dropped.
    """
    out = copy.deepcopy(data)
    pairs = list(overrides.items()) if isinstance(overrides, dict) else [parse_override(o) for o in overrides]
    explicit_model_keys: set[str] = set()
    for key, value in pairs:
        parts = key.split(".")
        node = out
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigError(f"override '{key}': '{part}' is not a section")
            node = child
        node[parts[-1]] = value
        if parts[0] == "model" and len(parts) == 2:
            explicit_model_keys.add(parts[1])
    model = out.get("model")
    if accepted_options is not None and isinstance(model, dict) and "name" in explicit_model_keys:
        accepted = accepted_options(str(model["name"]))
        for key in list(model):
            if key not in ("name", "conditional") and key not in explicit_model_keys and key not in accepted:
                del model[key]
    return out


def parse_config(
    source: str | Path | dict[str, Any] | None = None,
    overrides: list[str] | dict[str, Any] | None = None,
    accepted_options: AcceptedOptions | None = None,
) -> Config:
    """Resolve a preset name, a YAML path or a dict, apply overrides, parse (no registry checks).

    Most callers want :func:`ganforge.load_config`, which also checks names and model
    options against the registries (and passes ``accepted_options``).

    Args:
        source: preset name (``"dcgan-digits"``), path to a YAML file, a mapping, or None for
            the default preset.
        overrides: ``["train.steps=100", ...]`` or ``{"train.steps": 100}``.
        accepted_options: see :func:`apply_overrides`.
    """
    if source is None:
        source = DEFAULT_PRESET
    if isinstance(source, dict):
        data = resolve_extends(source)
    elif isinstance(source, Path) or str(source).endswith((".yaml", ".yml")):
        data = resolve_extends(read_yaml(source))
    else:
        data = resolve_extends(read_yaml(preset_path(str(source))))
        data["name"] = data.get("name") or str(source)
    changed = apply_overrides(data, overrides or [], accepted_options)
    explicit = set(overrides) if isinstance(overrides, dict) else {parse_override(o)[0] for o in overrides or []}
    return from_dict(follow_data(data, changed, explicit))


#: ``eval`` keys a preset sets for its own data set: the count (``n: 1797``, all the digits) and
#: the domain classifier (``extractor: digits``). When the data set changes they go back to the
#: defaults, unless set along with it (see :func:`follow_data`).
DATA_SPECIFIC_EVAL_KEYS = ("n", "extractor", "extractor_weights")


def _data_name(data: dict[str, Any]) -> Any:
    section = data.get("data")
    return section.get("name", DataConfig.name) if isinstance(section, dict) else DataConfig.name


def follow_data(base: dict[str, Any], changed: dict[str, Any], explicit: Collection[str] = ()) -> dict[str, Any]:
    """``changed`` without the base's :data:`DATA_SPECIFIC_EVAL_KEYS` when its data set is another.

    ``cdcgan-digits --set data.name=image-folder`` keeps the preset's model and schedule but
    not its digits classifier and digit count: the run is then scored with the defaults
    (Inception, ``EvalConfig.n``). Keys in ``explicit`` (dotted, e.g. ``eval.n``, or ``eval``
    for the whole section) are kept.
    """
    section = changed.get("eval")
    if _data_name(base) == _data_name(changed) or not isinstance(section, dict) or "eval" in explicit:
        return changed
    kept = {k: v for k, v in section.items() if k not in DATA_SPECIFIC_EVAL_KEYS or f"eval.{k}" in explicit}
    return {**changed, "eval": kept}


def _deep_merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in update.items():
        out[key] = _deep_merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def flatten_keys(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested config data as dotted overrides; mapping-valued keys stay whole."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict) and dotted not in _MAPPING_KEYS:
            out.update(flatten_keys(value, dotted + "."))
        else:
            out[dotted] = value
    return out


_MAPPING_KEYS = {"loss.regularizers", "recipe_options", "model.options"}


def preset_changes(name: str) -> dict[str, Any]:
    """What preset ``name`` sets on top of the preset it extends, as dotted overrides.

    ``preset_changes("pacgan-grid25") == {"model.pack": 4}``: the same technique can then
    be applied to another base preset (``load_config("gan-ring8", preset_changes(...))``).
    """
    data = read_yaml(preset_path(name))
    if "extends" not in data:  # its "changes" would be a whole preset, silently replacing the base
        raise ConfigError(f"preset '{name}' extends no other preset, so it has no changes to apply elsewhere")
    data.pop("name", None)
    data.pop("extends", None)
    return flatten_keys(data)


def resolve_extends(data: dict[str, Any], seen: tuple[str, ...] = ()) -> dict[str, Any]:
    """``extends: PRESET`` at the top of a config: start from that preset, then apply the rest.

    Sections merge key by key (``train: {steps: 10}`` changes only the steps); a ``name``
    is not inherited. Chains are followed; a cycle is an error.
    """
    parent = data.get("extends")
    if parent is None:
        return data
    if not isinstance(parent, str):
        raise ConfigError(f"config key 'extends' must name a preset, got {parent!r}")
    if parent in seen:
        raise ConfigError(f"presets extend each other in a cycle: {' -> '.join((*seen, parent))}")
    base = resolve_extends(read_yaml(preset_path(parent)), (*seen, parent))
    base.pop("name", None)
    child = {k: v for k, v in data.items() if k != "extends"}
    merged = _deep_merge(base, child)
    child_eval = child.get("eval") if isinstance(child.get("eval"), dict) else {}
    return follow_data(base, merged, {f"eval.{k}" for k in child_eval})


DEFAULT_PRESET = "dcgan-digits"
