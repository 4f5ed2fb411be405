"""The HTTP API and web page of ``ganforge serve``: a FastAPI app around one generator.

Endpoints (all documented in the OpenAPI schema at ``/openapi.json``):

* ``POST /api/generate``: ``n`` samples, sample ``i`` from seed ``seed + i``; one file of them all
  (a grid PNG of images; one WAV of clips) or a JSON list of base64 files, one per sample.
* ``POST /api/interpolate``: frames walking from seed ``seed_a``'s latent to ``seed_b``'s.
* ``GET /api/info``: what the model is, its labels, the media it returns, and the request limits.
* ``GET /health``, and the web page at ``/``.

What a sample becomes is its modality's: a PNG for images, a WAV for audio, a CSV row for tables
(``media_type`` in ``/api/info`` and in every JSON response says which; the page presents it in the
element of :attr:`~ganforge.modality.Media.element`: ``<img>``, ``<audio>``, one ``<table>`` of all rows).
Every file carries provenance (:func:`ganforge.sampling.provenance`: PNG text chunks, WAV RIFF INFO;
a CSV row or a line of text has nowhere to keep it: the JSON response's fields say it). Bad input is
a 4xx with a message: 422 for a malformed request (wrong type, out-of-range field, unknown
field), 400 for a request the model cannot honour (``{"detail": "..."}``, any
:class:`~ganforge.errors.UserError`), 413 for a body over the cap, 400 for a ``Host`` header
not allowed (:mod:`ganforge.serve.guards`). Errors quote at most a short prefix of the input.
No page loads anything from the internet: there is no ``/docs`` (FastAPI's Swagger UI and
ReDoc fetch their scripts from a CDN).
"""

import asyncio
import base64
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import torch
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from .. import modality as modalities
from ..errors import UserError
from ..models.base import MIN_TRUNCATION, Generator, truncated_normal
from ..rundir import load_generator
from ..safeguards.detector import Detector
from ..safeguards.verify import verify_bytes
from ..sampling import label_out_of_range, latent_walk, parse_label, provenance, shorten
from ..version import __version__
from .batcher import MicroBatcher, padded_forward
from .guards import DEFAULT_MAX_BODY_BYTES, LOOPBACK_HOSTS, BodyLimit, HostCheck, check_host_patterns

STATIC = Path(__file__).parent / "static"
MAX_SEED = 2**32 - 1
MAX_TRUNCATION = 10.0
MAX_FIELD_ERRORS = 10  # a 422 lists at most this many problems (a body may have thousands of unknown fields)


@dataclass(frozen=True)
class Limits:
    """What one request may ask for, and how requests are batched."""

    max_n: int = 64  # samples per /api/generate request
    max_steps: int = 32  # frames per /api/interpolate request
    max_scale: int = 8  # nearest-neighbour upscaling factor of returned PNGs
    max_batch: int = 64  # samples per generator call (requests are merged up to this)
    batch_wait_ms: float = 5.0  # how long the batcher waits for more requests
    max_values: int = 1 << 24  # values per response, as the modality counts them: image pixels n * (H * scale) * (W * scale),
    # audio samples n * L; ~16.8 million (``max_pixels`` is its older name)
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES  # request body size (413 above it)

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            least = 0 if name == "batch_wait_ms" else 1
            if value < least:
                raise UserError(f"serve limit {name} must be >= {least}, got {value}")


# --------------------------------------------------------------------------- schemas


class ErrorResponse(BaseModel):
    detail: str = Field(description="what was wrong with the request")


class ImagesResponse(BaseModel):
    """Base64-encoded files, one per sample (each with provenance metadata), and how each was made."""

    images: list[str] = Field(description="base64 files of media_type, one per sample (PNG images, WAV clips); "
                                          "prefix with 'data:<media_type>;base64,' to show or play")
    media_type: str = Field(description="the MIME type of every file in images: image/png, audio/wav")
    seeds: list[int] = Field(description="the seed of each sample (generate) or [seed_a, seed_b] (interpolate)")
    labels: list[int] | None = Field(description="the class index of each sample; null for unconditional models")
    truncation: float | None
    generator: str = Field(description="the generator's weights id")


class InfoResponse(BaseModel):
    model: str = Field(description="generator class")
    run: str
    step: int | None
    data: str
    generator: str = Field(description="weights id (also in every file's 'generator' provenance field)")
    modality: str = Field(description="what a sample is: image, audio, ...")
    media_type: str = Field(description="the MIME type of one sample's file (format=images): image/png, audio/wav")
    batch_media_type: str = Field(description="the MIME type of format=grid: image/png (a grid), audio/wav (the clips "
                                              "one after another)")
    output_fields: dict[str, str] = Field(description="fields every file's provenance repeats (audio: sample_rate)")
    conditional: bool
    num_classes: int
    class_names: list[str] = Field(description="label names, index = class; empty for unconditional models")
    missing_label: str = Field(description="what /api/generate does without a label on a conditional model")
    output_shape: list[int]
    channels: int = Field(description="image channels (1 for clips and sentences)")
    resolution: int = Field(description="the last axis of a sample: image width, clip samples, words per sentence")
    latent_dim: int
    limits: dict[str, int | float]
    batching: dict[str, int] = Field(description="micro-batcher counters since start")


def _integral(value: Any) -> Any:
    """A float with no fractional part as an int (JSON Schema's ``integer`` includes ``5.0``); the rest unchanged."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


Int = Annotated[int, BeforeValidator(_integral)]  # strict otherwise: "5", 2.5 and true are not integers
IntOrNone = Annotated[int | None, BeforeValidator(_integral)]  # (not Int | None: its bounds would leave the schema)
Label = Annotated[int | str | None, BeforeValidator(_integral)]  # a class index or a class name


def _request_models(limits: Limits) -> tuple[type[BaseModel], type[BaseModel]]:
    """The request bodies, with this app's limits in their field constraints (and so in the schema)."""
    strict = ConfigDict(extra="forbid", strict=True)
    label_doc = "class index or class name (conditional models only)"
    truncation_doc = f"redraw latent entries with |z| above this ({MIN_TRUNCATION}..{MAX_TRUNCATION}); null: none"
    scale_doc = "nearest-neighbour upscaling of the returned images (ignored where samples cannot be enlarged: audio)"

    class GenerateRequest(BaseModel):
        """``n`` samples; sample ``i`` uses seed ``seed + i``."""

        model_config = strict
        n: Int = Field(16, ge=1, le=limits.max_n, description="number of samples")
        seed: Int = Field(0, ge=0, le=MAX_SEED, description="seed of the first sample; sample i uses seed + i")
        label: Label = Field(
            None, description=f"{label_doc}; default on a conditional model: cycle through the classes"
        )
        truncation: float | None = Field(None, ge=MIN_TRUNCATION, le=MAX_TRUNCATION, description=truncation_doc)
        format: Literal["grid", "images"] = Field(
            "grid", description="one file of all samples (a PNG grid; a WAV of the clips), or JSON with one file per sample"
        )
        nrow: IntOrNone = Field(None, ge=1, le=limits.max_n, description="images per grid row")
        scale: Int = Field(1, ge=1, le=limits.max_scale, description=scale_doc)

    class InterpolateRequest(BaseModel):
        """``steps`` frames from seed ``seed_a``'s latent (first frame) to ``seed_b``'s (last frame)."""

        model_config = strict
        seed_a: Int = Field(0, ge=0, le=MAX_SEED)
        seed_b: Int = Field(1, ge=0, le=MAX_SEED)
        steps: Int = Field(8, ge=2, le=limits.max_steps, description="number of frames, both ends included")
        mode: Literal["slerp", "linear"] = Field("slerp", description="great-circle or straight-line path")
        label: Label = Field(None, description=f"{label_doc}; required for conditional models")
        truncation: float | None = Field(None, ge=MIN_TRUNCATION, le=MAX_TRUNCATION, description=truncation_doc)
        format: Literal["grid", "images"] = Field(
            "grid", description="one file of all frames (a PNG strip; a WAV of the clips), or JSON with one file per frame"
        )
        scale: Int = Field(1, ge=1, le=limits.max_scale, description=scale_doc)

    return GenerateRequest, InterpolateRequest


# --------------------------------------------------------------------------- the service


def seed_latents(latent_dim: int, seeds: list[int], truncation: float | None) -> torch.Tensor:
    """Latents ``[len(seeds), D]``: each the first one ``Generator.sample(1, seed)`` would draw."""
    return torch.cat([truncated_normal((1, latent_dim), truncation, torch.Generator().manual_seed(s)) for s in seeds])


class GeneratorService:
    """One generator behind a micro-batcher, with label checking; its modality encodes the samples."""

    def __init__(self, generator: Generator, limits: Limits) -> None:
        if not isinstance(generator, Generator):  # e.g. an image-to-image translator (pix2pix, CycleGAN)
            raise UserError(
                f"ganforge serve samples generators of latents; {type(generator).__name__} maps images to images "
                "and cannot be served yet"
            )
        self.modality = modalities.of(generator)
        if not self.modality.servable:
            kinds = [kind.name for kind in map(modalities.get, modalities.MODALITIES.names()) if kind.servable]
            shown = " and ".join([", ".join(kinds[:-1]), kinds[-1]] if len(kinds) > 1 else kinds)
            raise UserError(
                f"ganforge serve shows {shown} samples; this generator makes {self.modality.name} samples of shape "
                f"{tuple(generator.output_shape)} (write them with: ganforge sample RUN_DIR --out "
                f"{' or '.join('FILE' + s for s in self.modality.suffixes)})"
            )
        self.generator = generator.eval()
        self.limits = limits
        self.meta: dict[str, Any] = dict(getattr(generator, "meta", None) or {})
        k = generator.num_classes
        self.class_names = [str(c) for c in (self.meta.get("class_names") or range(k))][:k] if k else []
        self.batcher = MicroBatcher(self._forward, max_batch=limits.max_batch, wait_ms=limits.batch_wait_ms)

    def _forward(self, z: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        return padded_forward(self.generator, z, labels, self.limits.max_batch)

    def resolve_label(self, label: int | str | None) -> int | None:
        """A request's label as a class index (None stays None); a UserError if the model cannot take it."""
        if label is None:
            return None
        k = self.generator.num_classes
        if k == 0:
            raise UserError(f"this generator is unconditional: it takes no label (got {shorten(repr(label))})")
        index = parse_label(label, self.class_names, k)
        if not 0 <= index < k:
            raise label_out_of_range(index, k)
        return index

    def check_size(self, count: int, scale: int) -> None:
        """A UserError if ``count`` samples at ``scale`` hold more values than ``max_values`` (the modality counts them)."""
        kind = self.modality
        values, what = kind.size(tuple(self.generator.output_shape), count, scale if kind.scalable else 1)
        if values > self.limits.max_values:
            raise UserError(
                f"this request asks for {what}; the limit is {self.limits.max_values}: "
                f"ask for fewer {kind.plural}{' or a smaller scale' if kind.scalable else ''}"
            )

    def labels_for(self, n: int, label: int | None) -> torch.Tensor | None:
        """Per-sample labels: ``label`` for all, or cycling ``0..K-1`` when none was given."""
        if not self.generator.num_classes:
            return None
        return torch.full((n,), label) if label is not None else torch.arange(n) % self.generator.num_classes

    async def samples(self, z: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        """Outputs (model range) for latents and labels, through the micro-batcher."""
        return await self.batcher.submit(z, labels)

    def body(self, seeds: list[int], labels: list[int] | None, truncation: float | None) -> dict[str, Any]:
        """The fields of an :class:`ImagesResponse` besides the files."""
        return {"media_type": self.modality.media.type if self.modality.media else "", "seeds": seeds, "labels": labels,
                "truncation": truncation, "generator": str(self.meta.get("weights_id", ""))}

    def info(self) -> dict[str, Any]:
        """The fields of an :class:`InfoResponse`."""
        g = self.generator
        shape = [int(s) for s in g.output_shape]
        return {
            "model": type(g).__name__,
            "run": str(self.meta.get("run", "")),
            "step": self.meta.get("step"),
            "data": str(self.meta.get("data") or ""),
            "generator": str(self.meta.get("weights_id", "")),
            "modality": self.modality.name,
            "media_type": self.modality.media.type if self.modality.media else "",
            "batch_media_type": self.modality.batch_media.type,
            "output_fields": {k: str(v) for k, v in self.modality.output_fields(self.meta).items()},
            "conditional": bool(g.num_classes),
            "num_classes": int(g.num_classes),
            "class_names": self.class_names,
            "missing_label": "cycle through the classes (image i gets class i mod K)" if g.num_classes else "",
            "output_shape": shape,
            "channels": shape[0] if len(shape) > 1 else 1,
            "resolution": shape[-1],
            "latent_dim": int(g.latent_dim),
            "limits": {**asdict(self.limits), "max_pixels": self.limits.max_values},  # (max_pixels: its older name)
            "batching": self.batcher.stats.as_dict(),
        }


@dataclass
class Rendered:
    """Generated samples, their provenance, and what JSON responses say about them."""

    modality: modalities.Modality
    samples: torch.Tensor  # outputs in the model's range [N, ...]
    metadata: list[dict[str, str]]  # provenance of each sample
    grid_metadata: dict[str, str]  # provenance of the file of them all
    nrow: int | None  # images per grid row (None: square)
    body: dict[str, Any]  # media type, seeds, labels, truncation, generator
    name: str  # suggested name of the file of them all, without its suffix

    def response(self, fmt: str, scale: int) -> Response:
        """One file of all samples (``fmt="grid"``) or JSON with one base64 file per sample (CPU work: run it in a thread)."""
        kind = self.modality
        if fmt == "grid":
            content = kind.encode_batch(self.samples, self.grid_metadata, nrow=self.nrow, scale=scale)
            media = kind.batch_media
            headers = {"Content-Disposition": f'inline; filename="{self.name}{media.suffix}"'}
            return Response(content, media_type=media.type, headers=headers)
        encoded = [
            base64.b64encode(kind.encode(stored, meta, scale=scale)).decode()
            for stored, meta in zip(kind.to_stored(self.samples), self.metadata)
        ]
        return JSONResponse({"images": encoded, **self.body})


# --------------------------------------------------------------------------- the app


def create_app(
    run_dir_or_generator: str | Path | Generator,
    *,
    device: str | torch.device = "cpu",
    max_n: int = 64,
    max_steps: int = 32,
    max_scale: int = 8,
    max_batch: int = 64,
    batch_wait_ms: float = 5.0,
    max_values: int = Limits.max_values,
    max_pixels: int | None = None,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    allowed_hosts: Sequence[str] = LOOPBACK_HOSTS,
    detector: str | Path | None = None,
) -> FastAPI:
    """A FastAPI app serving one generator (a run directory, a ``generator/`` folder, or a loaded one).

    Args:
        run_dir_or_generator: what to serve; a path is loaded with :func:`load_generator`, a
            generator is used as it is (and put in eval mode).
        device: where a loaded generator runs.
        max_n: most samples per ``/api/generate`` request.
        max_steps: most frames per ``/api/interpolate`` request.
        max_scale: largest upscaling factor of returned images.
        max_batch: samples per generator call; concurrent requests are merged up to this, and
            every call runs exactly this many (zero-padded) so results never depend on batching.
        batch_wait_ms: how long the batcher waits for more requests before running.
        max_values: most values per response, as the modality counts them (image pixels:
            images x height x width, after scaling; audio samples: clips x length); a request
            for more is a 400.
        max_pixels: the older name of ``max_values`` (wins when given).
        max_body_bytes: largest request body; a larger one is a 413, refused before it is read
            when it declares its length, cut off at the limit when it is streamed.
        allowed_hosts: the names a request's ``Host`` header may give (others get a 400):
            host names, IP addresses, ``*.domain``, or ``*`` for any. The default, the
            loopback names, refuses DNS-rebinding requests from web pages; a server reached
            by another name needs that name here.
        detector: a detector file (``ganforge detect train``): ``/api/verify`` then also reports
            the probability that an upload is synthetic.
    """
    if isinstance(run_dir_or_generator, torch.nn.Module):
        generator = run_dir_or_generator
    else:
        generator = load_generator(run_dir_or_generator, device)
    limits = Limits(max_n=max_n, max_steps=max_steps, max_scale=max_scale, max_batch=max_batch,
                    batch_wait_ms=batch_wait_ms, max_values=max_values if max_pixels is None else max_pixels,
                    max_body_bytes=max_body_bytes)
    hosts = check_host_patterns(allowed_hosts)
    scorer = None if detector is None else Detector.load(detector)
    service = GeneratorService(generator, limits)
    GenerateRequest, InterpolateRequest = _request_models(limits)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        await service.batcher.close()

    title = f"ganforge: {service.meta.get('run') or type(generator).__name__}"
    app = FastAPI(title=title, version=_version(), lifespan=lifespan, description=__doc__.split("\n\n")[0],
                  docs_url=None, redoc_url=None)  # both load their scripts from a CDN
    app.add_middleware(BodyLimit, max_bytes=limits.max_body_bytes)
    app.add_middleware(HostCheck, allowed_hosts=hosts)  # added last: runs first
    app.state.service = service
    app.state.batcher = service.batcher

    @app.exception_handler(UserError)
    async def user_error(request: Request, err: UserError) -> JSONResponse:
        return JSONResponse({"detail": str(err)}, status_code=400)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, err: RequestValidationError) -> JSONResponse:
        return JSONResponse({"detail": field_errors(err.errors())}, status_code=422)

    batch = service.modality.batch_media
    png_or_json: dict[int | str, dict[str, Any]] = {
        200: {"content": {batch.type: {}}, "description": f"one {batch.suffix[1:].upper()} for format=grid, JSON for format=images"},
        400: {"model": ErrorResponse, "description": "a request the model cannot honour, or a Host header not allowed"},
        413: {"model": ErrorResponse, "description": "a request body over max_body_bytes"},
    }

    @app.post("/api/generate", response_model=ImagesResponse, responses=png_or_json)
    async def generate(request: GenerateRequest) -> Response:
        """``n`` samples, sample ``i`` from seed ``seed + i``: one file of them all (a PNG grid, a WAV) or base64 files."""
        r: Any = request  # its class is made per app, from the limits
        service.check_size(r.n, r.scale)
        label = service.resolve_label(r.label)
        seeds = list(range(r.seed, r.seed + r.n))
        labels = service.labels_for(r.n, label)
        samples = await service.samples(seed_latents(generator.latent_dim, seeds, r.truncation), labels)
        per_image = [None] * r.n if labels is None else labels.tolist()
        cycling = labels is not None and label is None
        rendered = Rendered(
            service.modality,
            samples,
            [provenance(generator, seed=s, label=c, truncation=r.truncation) for s, c in zip(seeds, per_image)],
            provenance(generator, seed=r.seed, label=",".join(map(str, per_image)) if cycling else label,
                       truncation=r.truncation, n=r.n),
            r.nrow or (generator.num_classes if cycling else None),
            service.body(seeds, None if labels is None else per_image, r.truncation),
            f"ganforge-seed{r.seed}-n{r.n}",
        )
        return await asyncio.to_thread(rendered.response, r.format, r.scale)

    @app.post("/api/interpolate", response_model=ImagesResponse, responses=png_or_json)
    async def interpolate(request: InterpolateRequest) -> Response:
        """``steps`` frames from seed ``seed_a``'s sample to seed ``seed_b``'s: one file of them all or base64 files."""
        r: Any = request  # its class is made per app, from the limits
        service.check_size(r.steps, r.scale)
        label = service.resolve_label(r.label)
        if generator.num_classes and label is None:
            raise UserError(
                f"this generator is conditional: give a label (0..{generator.num_classes - 1} or a class name) "
                "to interpolate within"
            )
        z = latent_walk(generator.latent_dim, [r.seed_a, r.seed_b], r.steps - 1, r.mode, r.truncation)
        samples = await service.samples(z, service.labels_for(len(z), label))
        common = dict(seed=f"{r.seed_a},{r.seed_b}", label=label, truncation=r.truncation, interpolation=r.mode)
        rendered = Rendered(
            service.modality,
            samples,
            [provenance(generator, frame=f"{i}/{r.steps - 1}", **common) for i in range(r.steps)],
            provenance(generator, frames=r.steps, **common),
            r.steps,
            service.body([r.seed_a, r.seed_b], None if label is None else [label] * r.steps, r.truncation),
            f"ganforge-{r.mode}-{r.seed_a}-{r.seed_b}",
        )
        return await asyncio.to_thread(rendered.response, r.format, r.scale)

    @app.post("/api/verify", responses={
        200: {"description": "the report of ganforge verify: metadata, watermark, C2PA manifest (and the "
              "detector's probability when the server has one)"},
        400: {"model": ErrorResponse, "description": "a body that is no image"},
        413: {"model": ErrorResponse, "description": "a request body over max_body_bytes"},
    }, openapi_extra={"requestBody": {"required": True, "content": {
        "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}}})
    async def verify(request: Request) -> dict[str, Any]:
        """Check an uploaded image (the raw file as the body) as ``ganforge verify`` does, with the server's watermark key."""
        data = await request.body()
        return await asyncio.to_thread(verify_bytes, data, "upload", detector=scorer)

    @app.get("/api/info", response_model=InfoResponse)
    async def info() -> dict[str, Any]:
        """The model (class, data set, labels, output shape, latent size), the media it returns and the request limits."""
        return service.info()

    @app.get("/health")
    async def health() -> dict[str, str]:
        """``{"status": "ok"}`` while the server runs."""
        return {"status": "ok"}

    @app.get("/", include_in_schema=False)
    async def index() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app


def field_errors(errors: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """FastAPI's 422 entries without the input they echo: ``loc`` (names quoted short), ``msg`` and ``type``.

    FastAPI's own handler returns each bad ``input`` whole (megabytes for a long string, and
    not JSON at all for NaN); at most :data:`MAX_FIELD_ERRORS` entries are listed.
    """
    shown = [
        {"loc": [shorten(part) if isinstance(part, str) else part for part in e.get("loc", ())],
         "msg": shorten(e.get("msg", ""), 200), "type": str(e.get("type", ""))}
        for e in errors[:MAX_FIELD_ERRORS]
    ]
    if len(errors) > MAX_FIELD_ERRORS:
        shown.append({"loc": ["body"], "msg": f"and {len(errors) - MAX_FIELD_ERRORS} more problems", "type": "too_many_errors"})
    return shown


def _version() -> str:
    return __version__
