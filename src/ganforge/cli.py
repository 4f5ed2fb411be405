"""The ``ganforge`` command line: thin subcommands over the public API.

User mistakes (unknown keys, names, missing files) print one ``error:`` line and exit 2;
a run that fails (divergence, interruption) exits 1; no traceback either way. Every numeric
flag declares its range (``set_defaults(ranges=...)``), checked by :func:`main` before the
command does any work.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Sequence

from .errors import GanforgeError, UserError
from .runtime import tune_allocator

if TYPE_CHECKING:
    from .models import Generator

Command = Callable[[argparse.Namespace], int]

#: ``--label``: names first, then indices (class folders may be named by digits).
LABEL_HELP = (
    "class name (a class folder's name) or index, for conditional generators; a name wins: with class "
    "folders 0, 3, 7, --label 7 is folder 7 (index 2) and --label 1 is index 1 (folder 3)"
)


def _split_set_args(preset: str | None, sets: list[str]) -> tuple[str | None, list[str]]:
    """``--set a=1 dcgan-mnist`` puts the preset into ``--set``; move it back."""
    loose = [s for s in sets if "=" not in s]
    if preset is None and len(loose) == 1:
        return loose[0], [s for s in sets if "=" in s]
    return preset, sets


def cmd_train(args: argparse.Namespace) -> int:
    from .training import train

    preset, sets = _split_set_args(args.config, args.set or [])
    if args.resume and (preset or args.out):
        raise UserError("--resume RUN_DIR continues that run: give no preset and no --out with it")
    if args.nproc and args.nproc > 1 and "WORLD_SIZE" not in os.environ:
        return _launch_torchrun(args)
    from .distributed import cleanup

    try:
        run = train(preset, out=args.out, overrides=sets, resume=args.resume)
    except BaseException:
        cleanup()  # leave the process group (torchrun runs); nothing to do for one process
        raise
    cleanup(wait_for_all=True)
    if os.environ.get("RANK", "0") != "0":
        return 0  # rank 0 reports
    print(f"run saved to {run.dir} (step {run.step})")
    if run.latest_samples is not None:
        print(f"samples: {run.latest_samples}")
    return 0


def _launch_torchrun(args: argparse.Namespace) -> int:
    """``ganforge train --nproc N ...`` = ``torchrun --standalone --nproc_per_node=N -m ganforge train ...``."""
    import subprocess

    if not args.resume:  # check the config here, once, before N processes start and fail alike
        from .distributed import check_global_batch
        from .validate import load_config

        check_global_batch(load_config(*_split_set_args(args.config, args.set or [])).train.batch_size, args.nproc)
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={args.nproc}",
               "-m", "ganforge", "train"]
    if args.config:
        command.append(args.config)
    if args.out:
        command += ["--out", args.out]
    if args.resume:
        command += ["--resume", args.resume]
    for flag in ("watermark_key", "sign_cert", "sign_key"):  # the sample grids' provenance, in every process
        if getattr(args, flag, None):
            command += [f"--{flag.replace('_', '-')}", getattr(args, flag)]
    if getattr(args, "no_watermark", False):
        command.append("--no-watermark")
    if args.set:
        command += ["--set", *args.set]
    return subprocess.run(command).returncode


def cmd_sample(args: argparse.Namespace) -> int:
    from . import modality
    from .sampling import provenance

    generator = _load_generator(args.run)
    kind = modality.of(generator)
    kind.writer_for(args.out)  # a bad --out fails before any work
    label = _label(generator, args.label)
    extra = {}
    if args.temperature is not None:
        if not hasattr(generator, "temperature"):
            raise UserError("--temperature applies to generators that sample word by word (text runs), not to this one")
        generator.temperature = extra["temperature"] = args.temperature
    if args.condition is not None:
        extra.update(kind.condition(generator, args.condition))
    samples = generator.sample(args.n, seed=args.seed, labels=label, truncation=args.truncation)
    nrow = args.nrow or (generator.num_classes if generator.num_classes and label is None else None)
    metadata = provenance(generator, seed=args.seed, label=label, truncation=args.truncation, **extra)
    out = kind.write(samples, args.out, nrow=nrow, metadata=metadata)
    print(f"wrote {args.n} samples to {out}")
    return 0


def _label(generator: Generator, label: str | None) -> int | None:
    """``--label`` (a class index or name) as the generator's class index; None when not given."""
    from .sampling import parse_label

    return parse_label(label, (getattr(generator, "meta", None) or {}).get("class_names"), generator.num_classes)


def _load_generator(path: str) -> Generator:
    """A run directory, its generator/ folder, or a file from ``ganforge export`` (by suffix)."""
    from .export import is_exported_path, load_exported

    if is_exported_path(path):
        return load_exported(path)
    from . import load

    return load(path)


def cmd_export(args: argparse.Namespace) -> int:
    from . import load
    from .export import TOLERANCE, export_generator

    result = export_generator(load(args.run), args.out, args.format, opset=args.opset)
    print(f"wrote {result.path} ({result.format}, inputs: {', '.join(result.metadata['inputs'])})")
    print(f"verified with {'onnxruntime' if result.format == 'onnx' else 'torch.jit.load'}: max abs difference "
          f"from the PyTorch generator {result.max_abs_diff:.2e} (tolerance {TOLERANCE:.0e})")
    return 0


def cmd_interpolate(args: argparse.Namespace) -> int:
    from .interpolation import output_kind, render_walk, save_walk

    output_kind(args.out)  # a bad --out fails before any work
    generator = _load_generator(args.run)
    label = _label(generator, args.label)
    walk = render_walk(generator, args.seeds, args.frames, args.mode, label, args.truncation, args.walk)
    written = save_walk(walk, args.out, fps=args.fps, size=args.size)
    where = args.out if len(written) == 1 else f"{written[0].parent} ({written[0].name} ... {written[-1].name})"
    steps = "frames" if walk.modality is None else walk.modality.plural
    print(f"wrote {len(walk.images)} {steps} ({args.mode}, seeds {' -> '.join(map(str, args.seeds))}) to {where}")
    return 0


def cmd_project(args: argparse.Namespace) -> int:
    from .core import resolve_device
    from .projection import ProjectOptions, encoder_for, project_files
    from .rundir import load_generator

    generator = load_generator(args.run, resolve_device(args.device))
    meta = getattr(generator, "meta", {}) or {}
    encoder = encoder_for(args.run, generator, args.space, steps=args.encoder_steps) if args.encoder else None
    options = ProjectOptions(space=args.space, steps=args.steps, lr=args.lr, perceptual=args.perceptual, seed=args.seed,
                             label=_label(generator, args.label), encoder=encoder)
    summary = project_files(generator, args.images, args.out, options, data=meta.get("data"), run=str(args.run))
    lpips = f", LPIPS {summary['mean_lpips']:.3f} (random {summary['mean_lpips_random']:.3f})" if "mean_lpips" in summary else ""
    print(f"projected {len(args.images)} image(s) in {args.space} ({args.steps} steps, perceptual: {summary['perceptual']}): "
          f"PSNR {summary['mean_psnr']:.2f} dB (random latents {summary['mean_psnr_random']:.2f} dB){lpips}; wrote {args.out}")
    return 0


def _strip_out(out: str) -> Path:
    path = Path(out)
    if path.suffix.lower() != ".png":
        raise UserError(f"--out must be a .png file, got '{out}'")
    return path


def cmd_edit(args: argparse.Namespace) -> int:
    import numpy as np
    import torch

    from .editing import edit_strip, find_directions, parse_direction
    from .models.base import seeded_latents
    from .sampling import provenance
    from .viz import image_grid, save_png

    out = _strip_out(args.out)
    method, index = parse_direction(args.direction)
    try:
        low, high = (float(v) for v in args.strength.split(","))
    except ValueError:
        raise UserError(f"--strength is LO,HI (e.g. -3,3), got '{args.strength}'") from None
    generator = _load_generator(args.run)
    label = _label(generator, args.label)
    if args.latent is not None:
        try:
            latent = torch.from_numpy(np.load(args.latent, allow_pickle=False)).float()
        except (OSError, ValueError) as err:
            raise UserError(f"'{args.latent}': not a latent .npy file ({err})") from None
    else:
        latent = seeded_latents(1, generator.latent_dim, args.seed)[0]
    directions = find_directions(generator, method, index + 1)
    strengths = torch.linspace(low, high, args.steps)
    images = edit_strip(generator, latent, directions, index, strengths, label)
    meta = provenance(generator, seed="" if args.seed is None else args.seed, label=label, direction=args.direction,
                      strengths=",".join(f"{v:.3g}" for v in strengths.tolist()), latent=args.latent or "")
    save_png(image_grid(images, nrow=len(images)), out, meta)
    print(f"wrote {out} ({args.steps} images along {args.direction} in {directions.space}, strength {low:g} to {high:g})")
    return 0


def cmd_mix(args: argparse.Namespace) -> int:
    from .editing import style_mix
    from .sampling import provenance
    from .viz import image_grid, save_png

    out = _strip_out(args.out)
    first, sep, last = args.layers.partition("-")
    if not (first.isdigit() and (not sep or last.isdigit())):
        raise UserError(f"--layers is A-B (style layer indices, e.g. 0-3), got '{args.layers}'")
    generator = _load_generator(args.run)
    label = _label(generator, args.label)
    grid = style_mix(generator, args.rows, args.cols, (int(first), int(last or first)), label)
    meta = provenance(generator, seed=f"rows {' '.join(map(str, args.rows))}; cols {' '.join(map(str, args.cols))}",
                      label=label, layers=args.layers)
    save_png(image_grid(grid, nrow=len(args.cols) + 1), out, meta)
    print(f"wrote {out} ({len(args.rows)} x {len(args.cols)} mixes, layers {args.layers} from the column seeds)")
    return 0


def cmd_push(args: argparse.Namespace) -> int:
    from .hub import PREFIX
    from .sharing import push, write_hub_folder

    if args.repo_id.count("/") != 1:
        raise UserError(f"REPO_ID is OWNER/NAME, got '{args.repo_id}'")
    if args.local:
        folder = write_hub_folder(args.run, args.local, license=args.license, repo_id=args.repo_id)
        print(f"wrote {folder} (config.json, model.safetensors, README.md) for {args.repo_id}; "
              f"once uploaded, load it with {PREFIX}{args.repo_id}")
        return 0
    url = push(args.run, args.repo_id, private=args.private, license=args.license)
    print(f"pushed {args.run} to {url}; load it with {PREFIX}{args.repo_id}")
    return 0


def cmd_synthesize(args: argparse.Namespace) -> int:
    from . import load
    from .synthesize import plan_balance, plan_per_class, plan_total, synthesize

    generator = load(args.run)
    if args.per_class is not None:
        plan = plan_per_class(generator, args.per_class)
    elif args.balance is not None:
        plan = plan_balance(generator, args.balance)
    else:
        plan = plan_total(generator, args.n)
    print(plan.describe())
    if plan.total == 0:
        print("nothing to generate: every class already has the largest count")
        return 0
    synthesize(
        generator, plan, args.out, seed=args.seed, truncation=args.truncation, batch_size=args.batch_size,
        overwrite=args.overwrite, progress=sys.stderr.isatty(), source=str(args.run), file_format=args.format,
    )
    print(f"wrote {plan.total:,} {plan.plural} to {args.out} (manifest: {Path(args.out) / 'manifest.json'})")
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    import json

    from .evaluation import EvalRequest, evaluate, evaluate_run, format_results, run_config
    from .validate import check_config

    common = dict(
        n=args.n, extractor=args.extractor, extractor_weights=args.extractor_weights, device=args.device,
        batch_size=args.batch_size, progress=sys.stderr.isatty(),
    )
    if args.save_stats is not None:
        from .evaluation import save_statistics

        if args.real is None:
            raise UserError("--save-stats writes the statistics of --real: give --real SAMPLES")
        saved = save_statistics(args.real, args.save_stats, resolution=args.resolution,
                                **{**common, "batch_size": common["batch_size"] or 100})
        print(f"wrote {saved['path']} (mean and covariance of {saved['n']} samples' {saved['extractor']} features)")
        if args.run is None and args.fake is None:
            return 0
    if args.run is not None:
        if args.fake is not None or args.resolution is not None:
            raise UserError(
                "RUN_DIR is evaluated at its own resolution against --real or its data set: "
                "give no --fake or --resolution with it"
            )
        check_config(run_config(args.run))  # the run's saved config against this installation's registries
        result = evaluate_run(args.run, metrics=args.metrics, real=args.real, seed=args.seed, **common)
        reference = f"its {result['split']} split" if "split" in result else "its data set"  # image-to-image: test pairs
        reference = result.get("sets", reference)  # super-resolution: HR benchmark folders (Set5, Set14)
        print(f"fake: {args.run}\nreal: {args.real or reference}")
        why = EvalRequest(args.run, extractor=args.extractor, extractor_weights=args.extractor_weights).extractor_choice().reason
    else:
        if args.fake is None:
            raise UserError("give a RUN_DIR, or --fake SAMPLES (and --real REFERENCE)")
        common["batch_size"] = common["batch_size"] or 100
        result = evaluate(
            args.real, args.fake, metrics=args.metrics, seed=args.seed, resolution=args.resolution, **common
        )
        print(f"fake: {args.fake}\nreal: {args.real or '-'}")
        why = "asked for" if args.extractor else "the default"
    if result.get("extractor") not in (None, "identity"):  # the features the scores are in, and why (defaults follow the data)
        print(f"extractor: {result['extractor']} ({why})")
    print(format_results(result))
    if args.json:
        out = Path(args.json)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=2) + "\n")
        print(f"wrote {out}")
    return 0


def _apply_images(args: argparse.Namespace, upscale: bool) -> int:
    """``ganforge upscale`` / ``translate``: one code path (:func:`ganforge.inference.process_files`)."""
    from .core import resolve_device
    from .inference import process_files
    from .models import is_translator
    from .rundir import load_generator

    generator = load_generator(args.run, resolve_device(args.device))
    scale = int(getattr(generator, "scale", 1))
    if not is_translator(generator):
        raise UserError(f"'{args.run}' holds a latent-variable generator: sample it with 'ganforge sample'")
    if upscale and scale < 2:
        raise UserError(f"'{args.run}' is not a super-resolution run (its generator has scale 1): use 'ganforge translate'")

    def report(source: Path, target: Path, before: tuple[int, ...], after: tuple[int, ...]) -> None:
        print(f"{source} ({before[1]}x{before[0]}) -> {target} ({after[1]}x{after[0]})")

    written = process_files(generator, args.inputs, args.out, tile=args.tile, margin=args.margin,
                            keep_grey=upscale, run=str(args.run), on_written=report)
    print(f"wrote {len(written)} image(s) to {args.out}")
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    from .safeguards.verify import summary, verify_file

    detector = None
    if args.detector:
        from .safeguards.detector import Detector

        detector = Detector.load(args.detector)
    reports = [verify_file(path, args.watermark_key, args.trust_anchors, detector) for path in args.files]
    if args.json:
        print(json.dumps(reports if len(reports) > 1 else reports[0], indent=2))
    else:
        for report in reports:
            print(summary(report))
    return 0


def cmd_detect(args: argparse.Namespace) -> int:
    from .safeguards.detector import Detector

    detector = Detector.load(args.detector)
    reports = [detector.score_file(path) for path in args.files]
    for report in reports:
        note = " (enlarged: smaller than the detector's input)" if report["enlarged"] else ""
        print(f"{report['file']}: P(synthetic) = {report['probability']:.3f}{note}")
    if args.json:
        out = Path(args.json)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps({"detector": str(args.detector), "weights_id": detector.weights_id,
                                   "files": reports}, indent=2) + "\n")
        print(f"wrote {out}")
    return 0


def cmd_detect_train(args: argparse.Namespace) -> int:
    from .safeguards.detector import train_detector

    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    detector = train_detector(args.real, args.fake, steps=args.steps, batch_size=args.batch_size, size=args.size,
                              lr=args.lr, augment_prob=args.augment, seed=args.seed, max_images=args.max_images,
                              progress=sys.stderr.isatty())
    path = detector.save(args.out)
    r = detector.record
    print(f"wrote {path}: {r['images']['real']} real and {r['images']['fake']} synthetic images, {r['steps']} steps; "
          f"held-out AUC {r['val_auc']:.3f}, accuracy {r['val_accuracy']:.1%}")
    return 0


def cmd_upscale(args: argparse.Namespace) -> int:
    return _apply_images(args, upscale=True)


def cmd_translate(args: argparse.Namespace) -> int:
    return _apply_images(args, upscale=False)


def cmd_serve(args: argparse.Namespace) -> int:
    import importlib.util
    import socket

    from .hub import resolve

    args.run = str(resolve(args.run))  # an hf:// path: its cached snapshot
    if not Path(args.run).is_dir():
        raise UserError(f"no run directory at '{args.run}' (give a run directory or its generator/ folder)")
    missing = [name for name in ("fastapi", "uvicorn") if importlib.util.find_spec(name) is None]
    if missing:
        raise UserError(f"ganforge serve needs {' and '.join(missing)}: pip install 'ganforge[serve]'")
    if not 0 <= args.port <= 65535:
        raise UserError(f"--port must be in 0..65535 (0: any free port), got {args.port}")
    import uvicorn

    from .core import resolve_device
    from .serve import create_app
    from .serve.guards import default_allowed_hosts

    device = resolve_device(args.device, "--device")
    hosts = args.allowed_hosts.split(",") if args.allowed_hosts is not None else default_allowed_hosts(args.host)
    # a missing or broken run, a bad --max-body-bytes or --allowed-hosts is a UserError here
    app = create_app(args.run, device=device, max_body_bytes=args.max_body_bytes, allowed_hosts=hosts,
                     detector=args.detector)
    sock = socket.socket(socket.AF_INET6 if ":" in args.host else socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((args.host, args.port))
    except OSError as err:
        sock.close()
        raise UserError(f"cannot listen on {args.host}:{args.port} ({err.strerror or err}); try another --port") from None
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    print(f"serving {args.run} at http://{shown}:{port}/ (API schema at /openapi.json; Ctrl-C stops)", flush=True)
    if args.allowed_hosts is None and host in ("0.0.0.0", "::"):
        print("note: only requests to localhost or 127.0.0.1 are answered; name the others this server is reached by "
              "with --allowed-hosts (or '*' for any)", flush=True)
    config = uvicorn.Config(app, log_level=args.log_level)
    uvicorn.Server(config).run(sockets=[sock])
    return 0


def _list(title: str, rows: list[tuple[str, str]]) -> int:
    width = max((len(name) for name, _ in rows), default=0)
    print(title)
    for name, text in rows:
        print(f"  {name.ljust(width)}  {text}")
    return 0


def cmd_bench_train(args: argparse.Namespace) -> int:
    import json

    from .bench import bench_train, format_report
    from .config import parse_override

    overrides = dict(parse_override(item) for item in args.set or [])
    result = bench_train(args.config, steps=args.steps, repeats=args.repeats, warmup=args.warmup,
                         batch_size=args.batch_size, overrides=overrides)
    print(format_report(result))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(result, indent=1))
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from .report import write_report

    print(f"wrote {write_report(args.run)}")
    return 0


def cmd_presets(args: argparse.Namespace) -> int:
    from .config import preset_dir, preset_names

    rows = []
    for name in preset_names():
        first = (preset_dir() / f"{name}.yaml").read_text().splitlines()[0]
        rows.append((name, first.lstrip("# ").strip() if first.startswith("#") else ""))
    return _list("presets (ganforge train PRESET):", rows)


def cmd_models(args: argparse.Namespace) -> int:
    from .models import MODELS, accepted_options

    rows = []
    for name in MODELS.names():
        options = ", ".join(f"{k}={p.default!r}" for k, p in accepted_options(name).items())
        rows.append((name, f"{MODELS.describe(name)}\n    {' ' * max(len(n) for n in MODELS.names())}options: {options}"))
    return _list("models (model.name):", rows)


def cmd_losses(args: argparse.Namespace) -> int:
    from .augment import AUGMENTS
    from .losses import LOSSES, REGULARIZERS

    _list("losses (loss.name):", [(n, LOSSES.describe(n)) for n in LOSSES.names()])
    rows = []
    for name in REGULARIZERS.names():
        options = ", ".join(["weight", "every", *(f"{k}={p.default!r}" for k, p in REGULARIZERS.get(name).options().items())])
        rows.append((name, f"{REGULARIZERS.describe(name)} [{options}]"))
    _list("regularizers (loss.regularizers.NAME.OPTION):", rows)
    return _list("augmentations (augment.name):", [(n, AUGMENTS.describe(n)) for n in AUGMENTS.names()])


def cmd_recipes(args: argparse.Namespace) -> int:
    import dataclasses

    from .training.recipes import RECIPES

    rows = []
    for name in RECIPES.names():
        fields = dataclasses.fields(RECIPES.get(name).Options)
        defaults = {f.name: f.default_factory() if f.default is dataclasses.MISSING else f.default for f in fields}
        options = ", ".join(f"{key}={value!r}" for key, value in defaults.items())
        rows.append((name, RECIPES.describe(name) + (f" [recipe_options: {options}]" if options else "")))
    return _list("recipes (recipe):", rows)


def cmd_data(args: argparse.Namespace) -> int:
    from .data import DATASETS

    return _list("data sets (data.name):", [(n, DATASETS.describe(n)) for n in DATASETS.names()])


def check_ranges(args: argparse.Namespace) -> None:
    """Every numeric flag within the range its command declares (``ranges``); a one-line error otherwise."""
    for dest, within in getattr(args, "ranges", {}).items():
        within.check(getattr(args, dest), f"--{dest.replace('_', '-')}", subject="{}")


def build_parser() -> argparse.ArgumentParser:
    from . import __version__
    from .config import MAX_BATCH, MAX_SIDE, MAX_STEPS, SEED_RANGE, Range

    def provenance_flags(p: argparse.ArgumentParser) -> None:
        p.add_argument("--watermark-key", metavar="KEY", help="mark generated images with this secret key instead of "
                       "ganforge's default one (only holders of KEY can then read the mark: ganforge verify --watermark-key)")
        p.add_argument("--no-watermark", action="store_true",
                       help="write generated images without the invisible watermark (recorded as watermark=off in their metadata)")
        p.add_argument("--sign-cert", metavar="PEM", help="sign every generated image with a C2PA manifest: this "
                       "certificate chain (leaf first; pip install 'ganforge[c2pa]')")
        p.add_argument("--sign-key", metavar="PEM", help="the private key of --sign-cert (unencrypted PEM)")

    finite = Range(-math.inf, math.inf)  # --truncation: its lower bound is the library's (check_truncation)
    batch = Range(1, MAX_BATCH)

    parser = argparse.ArgumentParser(prog="ganforge", description="Train, evaluate, explore and serve GANs.")
    parser.add_argument("--version", action="version", version=f"ganforge {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("train", help="train a GAN from a preset or a YAML file")
    p.add_argument("config", nargs="?", help="preset name or YAML file (default: dcgan-digits)")
    p.add_argument("--out", help="run directory (default: runs/<name>)")
    p.add_argument("--set", nargs="+", action="extend", metavar="KEY=VALUE", help="override config keys, e.g. train.steps=500")
    p.add_argument("--resume", metavar="RUN_DIR", help="continue a run from its latest checkpoint")
    p.add_argument("--nproc", type=int, metavar="N",
                   help="train on N processes (torchrun + gloo on CPU, NCCL with one GPU each); the global batch stays train.batch_size")
    provenance_flags(p)
    p.set_defaults(func=cmd_train, ranges={"nproc": Range(1, 1024)})

    p = sub.add_parser("sample", help="draw samples from a trained generator")
    p.add_argument("run", help="run directory, generator/ folder or exported file (.onnx, .pt, .torchscript)")
    p.add_argument("--n", type=int, default=64, help="number of samples (default 64)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True,
                   help="FILE.png (grid or scatter plot), FILE.npy (raw array), DIR/ (one PNG per image), FILE.wav (audio), "
                   "FILE.txt (text, one sentence a line); what a run accepts depends on its kind of data")
    p.add_argument("--label", help=LABEL_HELP)
    p.add_argument("--truncation", type=float, help="truncation threshold for the latents")
    p.add_argument("--nrow", type=int, help="images per row in the grid")
    p.add_argument("--temperature", type=float,
                   help="sampling temperature of text generators: below 1 more likely words, above 1 more varied (default 1)")
    p.add_argument("--condition", metavar="COLUMN=VALUE",
                   help="table runs: every row holds this value of a category column (e.g. target=malignant)")
    provenance_flags(p)
    p.set_defaults(func=cmd_sample, ranges={"n": Range(1, 100_000), "seed": SEED_RANGE, "truncation": finite,
                                            "nrow": Range(1, 1000), "temperature": Range(0.01, 100)})

    p = sub.add_parser(
        "export", help="export a generator to ONNX or TorchScript (verified against PyTorch)",
        description="Write RUN_DIR's generator as one file mapping latents z (and labels) to samples, "
        "check it with onnxruntime / torch.jit.load against PyTorch (max abs difference <= 1e-4), "
        "and embed its metadata. 'ganforge sample FILE' samples from it.",
    )
    p.add_argument("run", metavar="RUN_DIR", help="run directory or generator/ folder")
    p.add_argument("--out", required=True, help="FILE.onnx, or FILE.pt / FILE.torchscript")
    p.add_argument("--format", help="onnx or torchscript (default: from the --out suffix)")
    p.add_argument("--opset", type=int, default=18, help="ONNX opset, >= 17 (default 18)")
    p.set_defaults(func=cmd_export, ranges={"opset": Range(1, 1000)})

    p = sub.add_parser(
        "interpolate", help="render a latent walk between seeds as a GIF, MP4 or PNG frames",
        description="Frames through the latents of --seeds in order (the frame at a seed is that seed's sample).",
    )
    p.add_argument("run", metavar="RUN_DIR", help="run directory, generator/ folder or exported file")
    p.add_argument("--seeds", type=int, nargs="+", required=True, metavar="SEED", help="two or more seeds to pass through")
    p.add_argument("--frames", type=int, default=24, help="frames per segment between two seeds (default 24)")
    p.add_argument("--out", required=True,
                   help="walk.gif, walk.mp4 (pip install 'ganforge[video]'), walk.png (walk-0000.png, ...) or DIR/")
    p.add_argument("--mode", default="slerp", help="slerp (default) or linear")
    p.add_argument("--label", help=LABEL_HELP + "; default 0")
    p.add_argument("--truncation", type=float, help="truncation threshold (psi for StyleGAN)")
    p.add_argument("--fps", type=float, default=12.0, help="frames per second of a GIF or MP4 (default 12)")
    p.add_argument("--size", type=int, help="frame side in px, nearest-neighbour (default: enlarged to >= 256)")
    p.add_argument("--walk", metavar="PART",
                   help="walk one part of the latent, the rest fixed at the first seed (MoCoGAN: content or motion)")
    provenance_flags(p)
    p.set_defaults(func=cmd_interpolate, ranges={"seeds": SEED_RANGE, "frames": Range(1, 10_000), "truncation": finite,
                                                 "fps": Range(0, 1000, lo_open=True), "size": Range(1, MAX_SIDE)})

    p = sub.add_parser(
        "project", help="find the latents that reproduce real images (latent .npy, reconstruction, GIF, PSNR)",
        description="Optimise a latent per image so that the generator's output matches it: pixel + perceptual loss "
        "(LPIPS where installed, else the run's classifier), StyleGAN noise maps regularised (Karras et al. 2020).",
    )
    p.add_argument("run", metavar="RUN_DIR", help="run directory or generator/ folder")
    p.add_argument("images", nargs="+", metavar="IMAGE", help="image files (centre-cropped and resized to the generator's size)")
    p.add_argument("--out", required=True, help="output folder: IMAGE.npy, IMAGE.png, IMAGE.gif and projection.json")
    p.add_argument("--steps", type=int, default=300, help="optimisation steps (default 300)")
    p.add_argument("--space", default="z", help="z (default), w or w+ (StyleGAN runs)")
    p.add_argument("--lr", type=float, help="Adam's rate (default 0.05 in z, 0.1 in w / w+)")
    p.add_argument("--perceptual", default="auto",
                   help="auto (default: LPIPS if installed, else the run's classifier), lpips, classifier:NAME or none")
    p.add_argument("--seed", type=int, default=0, help="seed of the starting latents (same seed, same result)")
    p.add_argument("--label", help=LABEL_HELP + "; default: the class that fits best")
    p.add_argument("--encoder", action="store_true",
                   help="start from a small encoder's guess (trained on the generator's samples once, kept in RUN/encoder-SPACE/)")
    p.add_argument("--encoder-steps", type=int, default=1000, help="training steps of that encoder (default 1000)")
    p.add_argument("--device", default="cpu", help="cpu, cuda or auto (default cpu)")
    provenance_flags(p)
    p.set_defaults(func=cmd_project, ranges={"steps": Range(1, 100_000), "lr": Range(0, 10, lo_open=True), "seed": SEED_RANGE,
                                             "encoder_steps": Range(1, 10**6)})

    p = sub.add_parser(
        "edit", help="move a latent along a semantic direction (SeFa or GANSpace) and render a strip",
        description="Directions found without labels: sefa:K (closed-form: eigenvectors of the first layer's weights) "
        "or ganspace:K (principal components of sampled latents); strengths in standard deviations along them.",
    )
    p.add_argument("run", metavar="RUN_DIR", help="run directory or generator/ folder")
    start = p.add_mutually_exclusive_group(required=True)
    start.add_argument("--latent", metavar="X.npy", help="a latent from ganforge project (z, w or w+)")
    start.add_argument("--seed", type=int, help="the latent of this seed")
    p.add_argument("--direction", required=True, metavar="METHOD:K", help="sefa:K or ganspace:K (0 = the strongest)")
    p.add_argument("--strength", default="-3,3", metavar="LO,HI", help="range of strengths in standard deviations (default -3,3)")
    p.add_argument("--steps", type=int, default=7, help="images in the strip (default 7)")
    p.add_argument("--label", help=LABEL_HELP + "; default 0")
    p.add_argument("--out", required=True, help="the strip, a PNG")
    provenance_flags(p)
    p.set_defaults(func=cmd_edit, ranges={"seed": SEED_RANGE, "steps": Range(2, 1000)})

    p = sub.add_parser(
        "mix", help="StyleGAN style mixing: a grid of row seeds with a range of layers from column seeds",
        description="Cell (r, c) takes layers A..B from column seed c and the other layers from row seed r "
        "(early layers: coarse structure; late layers: fine detail).",
    )
    p.add_argument("run", metavar="RUN_DIR", help="a StyleGAN run directory or generator/ folder")
    p.add_argument("--rows", type=int, nargs="+", required=True, metavar="SEED", help="seeds of the rows")
    p.add_argument("--cols", type=int, nargs="+", required=True, metavar="SEED", help="seeds of the columns")
    p.add_argument("--layers", default="0-3", metavar="A-B", help="style layers taken from the column seeds (default 0-3)")
    p.add_argument("--label", help=LABEL_HELP + "; default 0")
    p.add_argument("--out", required=True, help="the grid, a PNG")
    provenance_flags(p)
    p.set_defaults(func=cmd_mix, ranges={"rows": SEED_RANGE, "cols": SEED_RANGE})

    p = sub.add_parser(
        "push", help="share a run's generator on the Hugging Face Hub (config.json, model.safetensors, a model card)",
        description="Upload the generator with a README.md model card (data, recipe, metrics, licence, training config) "
        "to REPO_ID; load it anywhere with hf://REPO_ID. --local DIR writes the same folder here instead.",
    )
    p.add_argument("run", metavar="RUN_DIR", help="run directory or generator/ folder")
    p.add_argument("repo_id", metavar="REPO_ID", help="OWNER/NAME on the Hub")
    p.add_argument("--license", default="other", help="the model card's licence (default: other)")
    p.add_argument("--private", action="store_true", help="create the repository private")
    p.add_argument("--local", metavar="DIR", help="write the repository's files to DIR instead of uploading them")
    p.set_defaults(func=cmd_push)

    p = sub.add_parser(
        "synthesize",
        help="write a labelled synthetic data folder (class sub-folders of PNGs or WAVs) for data augmentation",
        description="Generate a folder data set (image-folder, audio-folder): one sub-folder per class for conditional "
        "generators (a flat folder for unconditional ones), every file (PNG, WAV) with provenance metadata, plus manifest.json.",
    )
    p.add_argument("run", help="run directory or generator/ folder")
    amount = p.add_mutually_exclusive_group(required=True)
    amount.add_argument("--per-class", type=int, metavar="N", help="N samples of every class (conditional generators)")
    amount.add_argument("--balance", metavar="REAL_DIR",
                        help="top up every class of this labelled folder (class sub-folders) to its largest class")
    amount.add_argument("--n", type=int, metavar="N", help="N samples in all (classes cycle for conditional generators)")
    p.add_argument("--out", required=True, help="output folder (must be new or empty)")
    p.add_argument("--seed", type=int, default=0, help="sample i gets seed SEED * 2**32 + i (default 0)")
    p.add_argument("--truncation", type=float, help="truncation threshold for the latents")
    p.add_argument("--format", help="file format, checked against the generator's own (png for images, wav for clips; "
                   "lossless, with metadata); default: the generator's")
    p.add_argument("--batch-size", type=int, default=256, help="samples per generator batch (default 256)")
    p.add_argument("--overwrite", action="store_true", help="replace an earlier synthesize output in --out")
    provenance_flags(p)
    p.set_defaults(func=cmd_synthesize, ranges={"per_class": Range(1, 10**7), "n": Range(1, 10**8), "seed": SEED_RANGE,
                                                "truncation": finite, "batch_size": batch})

    p = sub.add_parser(
        "eval",
        help="score samples: FID, KID, IS, precision/recall, density/coverage, modes",
        description="Compare --fake samples with --real ones, or a RUN_DIR's generator with its data set "
        "(a source is an image folder, a run directory, a .npy/.npz array or a data set name such as cifar10:test).",
    )
    p.add_argument("run", nargs="?", metavar="RUN_DIR", help="evaluate this run with its data set and eval config")
    p.add_argument("--real", help="reference samples (default with RUN_DIR: the run's data set)")
    p.add_argument("--fake", help="samples to score")
    p.add_argument("--metrics", help="comma-separated: fid,kid,is,pr,dc,modes,cas (default: fid, or the run's eval.metrics)")
    p.add_argument("--n", type=int, help="samples per set (default: all real, 5000 generated, or the run's eval.n)")
    p.add_argument("--extractor", help="feature extractor (default: inception; for a RUN_DIR its eval.extractor, "
                   "but a data set's own classifier such as digits only on that data set)")
    p.add_argument("--extractor-weights", metavar="PATH", help="weights file for the extractor")
    p.add_argument("--json", metavar="OUT", help="also write the results to this JSON file")
    p.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto (default)")
    p.add_argument("--batch-size", type=int, help="images per batch (default 100, or the run's eval.batch_size)")
    p.add_argument("--seed", type=int, default=0, help="seed of the generator's latents (default 0)")
    p.add_argument("--resolution", type=int, help="square size for data sets and folders (default: native, or the generator's)")
    p.add_argument("--save-stats", metavar="FILE.npz",
                   help="write the mean and covariance of --real's features (pytorch-fid's .npz; --real FILE.npz reads one back)")
    p.set_defaults(func=cmd_eval, ranges={"n": Range(1, 10**7), "batch_size": batch, "seed": SEED_RANGE,
                                          "resolution": Range(1, MAX_SIDE)})

    for name, func, text, tile in (
        ("upscale", cmd_upscale, "super-resolve images of any size with an SR run (tiled, bounded memory)", 128),
        ("translate", cmd_translate, "translate images with an image-to-image run (pix2pix, CycleGAN)", None),
    ):
        p = sub.add_parser(name, help=text, description=text + "; writes OUT/<name>.png with provenance metadata.")
        p.add_argument("run", metavar="RUN_DIR", help="run directory or generator/ folder")
        p.add_argument("inputs", nargs="+", metavar="INPUT", help="image files (grey, RGB or RGBA)")
        p.add_argument("--out", required=True, metavar="DIR", help="output folder")
        p.add_argument("--tile", type=int, default=tile,
                       help=f"tile side in input pixels (default {tile or 'none: whole images'}); memory grows with it, not with the image")
        p.add_argument("--margin", type=int, default=16, help="context pixels around each tile (default 16)")
        p.add_argument("--device", default="cpu", help="cpu (default), cuda, cuda:N or auto")
        provenance_flags(p)
        p.set_defaults(func=func, ranges={"tile": Range(1, 65_536), "margin": Range(0, MAX_SIDE)})

    p = sub.add_parser(
        "verify", help="check images for ganforge's provenance: metadata, invisible watermark, C2PA manifest",
        description="For each file: the provenance in its metadata, the invisible watermark (found, the generator "
        "id it carries, whether that matches the metadata) and a C2PA manifest (signer, signature). --json for machines.",
    )
    p.add_argument("files", nargs="+", metavar="FILE", help="image files (PNG, JPEG, ...)")
    p.add_argument("--watermark-key", metavar="KEY", help="read marks made with this key (default: ganforge's default key)")
    p.add_argument("--trust-anchors", metavar="PEM", help="CA certificates whose C2PA signatures count as trusted")
    p.add_argument("--detector", metavar="DETECTOR",
                   help="also score the pixels with this detector (ganforge detect train): P(synthetic)")
    p.add_argument("--json", action="store_true", help="print the reports as JSON")
    p.set_defaults(func=cmd_verify)

    p = sub.add_parser(
        "detect", help="probability that images are synthetic, from a trained detector (ganforge detect train ...)",
        description="Score images with a real-vs-synthetic detector: one P(synthetic) per file. Train a detector "
        "with 'ganforge detect train --real DIR --fake DIR --out DETECTOR'.",
        usage="ganforge detect DETECTOR FILE... [--json OUT]\n       ganforge detect train --real DIR --fake DIR --out DETECTOR [...]",
    )
    p.add_argument("detector", metavar="DETECTOR", help="detector file written by 'ganforge detect train'")
    p.add_argument("files", nargs="+", metavar="FILE", help="image files")
    p.add_argument("--json", metavar="OUT", help="also write the probabilities to this JSON file")
    p.set_defaults(func=cmd_detect)

    p = sub.add_parser(
        "detect-train", prog="ganforge detect train",
        help="train a real-vs-synthetic image detector (also: ganforge detect train)",
        description="Train a small two-branch ResNet (pixels and log-magnitude spectrum) on --real images against "
        "--fake ones, with blur and JPEG augmentation (Wang et al. 2020). Images of any size are read as "
        "crops of the detector's input size, never resized.",
    )
    p.add_argument("--real", required=True, metavar="DIR", help="folder of real images (searched recursively)")
    p.add_argument("--fake", required=True, metavar="DIR", help="folder of synthetic images (searched recursively)")
    p.add_argument("--out", required=True, metavar="DETECTOR", help="detector file to write (.safetensors)")
    p.add_argument("--steps", type=int, default=2000, help="training steps (default 2000)")
    p.add_argument("--batch-size", type=int, default=64, help="crops per step, half real, half synthetic (default 64)")
    p.add_argument("--size", type=int, help="crop side in px (default: the smallest image side, at most 64)")
    p.add_argument("--lr", type=float, default=1e-3, help="peak learning rate of the one-cycle schedule (default 1e-3)")
    p.add_argument("--augment", type=float, default=0.5,
                   help="probability of blur and, independently, of JPEG re-encoding per image (default 0.5)")
    p.add_argument("--max-images", type=int, default=20_000, help="images read per folder, spread evenly (default 20000)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, help="CPU threads (default: torch's)")
    p.set_defaults(func=cmd_detect_train, ranges={
        "steps": Range(1, MAX_STEPS), "batch_size": Range(2, MAX_BATCH), "size": Range(8, 1024),
        "lr": Range(0, 1, lo_open=True), "augment": Range(0, 1), "max_images": Range(10, 10**7), "seed": SEED_RANGE,
        "threads": Range(1, 1024)})

    p = sub.add_parser("bench", help="measure speed and memory")
    bench = p.add_subparsers(dest="what", metavar="WHAT", required=True)
    b = bench.add_parser(
        "train", help="time the training step of a preset: images/s, ms/step, GFLOP/s, peak memory",
        description="Times the trainer's real step (the preset's networks, loss, precision and data loader); "
        "run it on an otherwise idle machine.",
    )
    b.add_argument("config", help="preset name or YAML file, e.g. dcgan64-celeba")
    b.add_argument("--steps", type=int, default=20, help="timed steps per repeat (default 20)")
    b.add_argument("--repeats", type=int, default=3, help="timed blocks; the median is reported (default 3)")
    b.add_argument("--warmup", type=int, default=3, help="untimed steps first (default 3)")
    b.add_argument("--batch-size", type=int, help="override train.batch_size")
    b.add_argument("--set", nargs="+", action="extend", metavar="KEY=VALUE", help="override config keys, e.g. train.precision=bf16")
    b.add_argument("--json", metavar="OUT", help="also write the figures to this JSON file")
    b.set_defaults(func=cmd_bench_train, ranges={"steps": Range(1, MAX_STEPS), "repeats": Range(1, 1000),
                                                 "warmup": Range(0, MAX_STEPS), "batch_size": batch})

    p = sub.add_parser("report", help="rebuild a run's report.html (curves, sample grids, config)")
    p.add_argument("run", help="run directory")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser(
        "serve", help="serve a generator: HTTP API + web page (needs: pip install 'ganforge[serve]')",
        description="Serve RUN_DIR's generator: a web page at / and a JSON/PNG API under /api (schema at /openapi.json).",
    )
    p.add_argument("run", metavar="RUN_DIR", help="run directory or generator/ folder")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1; 0.0.0.0 for all)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000; 0: any free port)")
    p.add_argument("--device", default="cpu", help="cpu (default), cuda, cuda:N or auto")
    p.add_argument("--allowed-hosts", metavar="HOST[,HOST...]",
                   help="names the Host header may give, others get a 400 (DNS-rebinding guard); '*.domain' matches "
                        "subdomains, '*' any host (default: localhost, 127.0.0.1, ::1 and --host unless it is 0.0.0.0)")
    p.add_argument("--max-body-bytes", type=int, default=1 << 20,
                   help="largest request body in bytes; larger ones get a 413 (default 1048576)")
    p.add_argument("--detector", metavar="DETECTOR",
                   help="a detector (ganforge detect train) whose P(synthetic) /api/verify adds to its reports")
    p.add_argument("--log-level", default="info", choices=("critical", "error", "warning", "info", "debug"),
                   help="server log level (default info: one line per request)")
    provenance_flags(p)
    p.set_defaults(func=cmd_serve, ranges={"max_body_bytes": Range(1, 1 << 30)})

    for name, func, text in (
        ("presets", cmd_presets, "list the bundled presets"),
        ("models", cmd_models, "list the registered model families and their options"),
        ("losses", cmd_losses, "list the losses, regularizers and augmentations"),
        ("recipes", cmd_recipes, "list the training recipes and their options"),
        ("data", cmd_data, "list the built-in data sets"),
    ):
        sub.add_parser(name, help=text).set_defaults(func=func)
    return parser


def _format_warning(message: Warning | str, category: type[Warning], *args: object, **kwargs: object) -> str:
    """Warnings as one ``warning: ...`` line (no source path and code line)."""
    return f"warning: {message}\n"


def main(argv: Sequence[str] | None = None) -> int:
    warnings.formatwarning = _format_warning  # type: ignore[assignment]
    tune_allocator()  # reuse freed activation memory instead of page-faulting it back in
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:2] == ["detect", "train"]:
        argv[:2] = ["detect-train"]  # 'ganforge detect train': its own parser (detect's first positional is a file)
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        check_ranges(args)
        from .safeguards import manifest, watermark

        with watermark.settings(getattr(args, "watermark_key", None), not getattr(args, "no_watermark", False)), \
                manifest.signing(getattr(args, "sign_cert", None), getattr(args, "sign_key", None)):
            return args.func(args)
    except GanforgeError as err:
        print(f"error: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
