"""Signed provenance: a C2PA manifest in every generated file, through ``c2pa-python`` (``ganforge[c2pa]``).

With ``--sign-cert PEM --sign-key PEM`` (``sample``, ``synthesize``, ``interpolate``, ``upscale``,
``translate``, ``serve``), every generated PNG gets a manifest signed with that key: the action
``c2pa.created`` with the IPTC digital source type ``trainedAlgorithmicMedia`` and ganforge as
the software agent, and an assertion ``org.ganforge.generator`` with the provenance fields
(weights id, run, seed, label). A reader checks the signature and that the pixels hash as when
signed; ``ganforge verify`` reports it. The certificate is the signer's: C2PA needs an
end-entity certificate issued by a CA (not self-signed), with the digitalSignature key usage
and an extended key usage such as emailProtection. Signing happens after the PNG is encoded
(the manifest covers the file's bytes), so any re-save drops it: that is what it proves.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..errors import UserError
from ..version import __version__

#: IPTC digital source type of media made by a trained model.
TRAINED = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"
#: Label of ganforge's own assertion (the provenance fields).
ASSERTION = "org.ganforge.generator"
#: Provenance fields copied into the assertion.
FIELDS = ("generator", "run", "seed", "label", "truncation", "watermark", "watermark_key_id")

_SIGNER: contextvars.ContextVar[tuple[str, str] | None] = contextvars.ContextVar("ganforge_signer", default=None)


def _c2pa() -> Any:
    try:
        import c2pa
    except ImportError:
        raise UserError("signing and reading C2PA manifests needs c2pa-python: pip install 'ganforge[c2pa]'") from None
    return c2pa


@contextlib.contextmanager
def signing(cert: str | None, key: str | None, names: tuple[str, str] = ("--sign-cert", "--sign-key")) -> Iterator[None]:
    """Sign every generated PNG written inside the block with this certificate chain and private key (PEM files);
    ``names``: how the user gave them (flags or config keys), for the errors."""
    if bool(cert) != bool(key):
        raise UserError(f"give both {names[0]} and {names[1]} (a certificate chain and its private key, PEM)")
    if cert and key:
        for flag, path in zip(names, (cert, key)):
            if not Path(path).is_file():
                raise UserError(f"{flag}: no file at '{path}'")
        _signer(str(cert), str(key))  # a bad certificate or key fails here, before any work
    token = _SIGNER.set((str(cert), str(key)) if cert and key else None)
    try:
        yield
    finally:
        _SIGNER.reset(token)


def active() -> bool:
    return _SIGNER.get() is not None


@functools.lru_cache(maxsize=4)
def _signer(cert: str, key: str) -> Any:
    """A ``c2pa.Signer`` for a PEM chain and key; the algorithm follows the key (P-256: ES256, RSA: PS256, ...)."""
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    c2pa = _c2pa()
    key_pem, cert_pem = Path(key).read_bytes(), Path(cert).read_bytes()
    try:
        private = load_pem_private_key(key_pem, password=None)
    except (ValueError, TypeError) as err:
        raise UserError(f"--sign-key: '{key}' is not an unencrypted PEM private key ({err})") from None
    if isinstance(private, ec.EllipticCurvePrivateKey):
        alg = {256: "es256", 384: "es384", 521: "es512"}.get(private.curve.key_size)
    elif isinstance(private, rsa.RSAPrivateKey):
        alg = "ps256"
    elif isinstance(private, ed25519.Ed25519PrivateKey):
        alg = "ed25519"
    else:
        alg = None
    if alg is None:
        raise UserError(f"--sign-key: C2PA signs with P-256/384/521, RSA or Ed25519 keys, not {type(private).__name__}")
    return c2pa.Signer.from_info(c2pa.C2paSignerInfo(alg.encode(), cert_pem, key_pem, None))


def manifest(metadata: dict[str, Any], title: str = "generated.png") -> dict[str, Any]:
    """The manifest definition of a generated file with these provenance ``metadata``."""
    agent = {"name": "ganforge", "version": __version__}
    return {
        "claim_generator_info": [agent],
        "title": title,
        "assertions": [
            {"label": "c2pa.actions", "data": {"actions": [
                {"action": "c2pa.created", "digitalSourceType": TRAINED, "softwareAgent": agent}]}},
            {"label": ASSERTION, "data": {k: str(metadata[k]) for k in FIELDS if k in metadata}},
        ],
    }


def sign(data: bytes, metadata: dict[str, Any], mime: str = "image/png") -> bytes:
    """``data`` (an encoded file) with a signed manifest, under the active :func:`signing` keys."""
    keys = _SIGNER.get()
    if keys is None:
        return data
    c2pa = _c2pa()
    settings = c2pa.Settings.from_dict({"builder": {"thumbnail": {"enabled": False}}})  # no 40 KB JPEG copy
    out = io.BytesIO()
    try:
        with c2pa.Context(settings=settings) as context, c2pa.Builder(manifest(metadata), context=context) as builder:
            builder.sign(_signer(*keys), mime, io.BytesIO(data), out)
    except c2pa.C2paError as err:
        raise UserError(f"C2PA signing failed: {str(err).splitlines()[0]} (the certificate must be a CA-issued "
                        "end-entity certificate with digitalSignature and emailProtection usages)") from None
    return out.getvalue()


def read(path: str | Path, trust_anchors: str | None = None, mime: str | None = None) -> dict[str, Any]:
    """The manifest report of a file: ``present``, ``state`` (Trusted / Valid / Invalid), ``signer``,
    ``created`` (a ``c2pa.created`` action with the trained-model source type), ``generator`` (ganforge's
    assertion) and the validation ``failures``. ``trust_anchors``: a PEM file of CA certificates to trust;
    ``mime``: the file's type (default: from its suffix)."""
    try:
        c2pa = _c2pa()
    except UserError as err:
        return {"present": None, "error": str(err)}
    config: dict[str, Any] = {}
    if trust_anchors:
        config["trust"] = {"user_anchors": Path(trust_anchors).read_text()}
    with c2pa.Context(settings=c2pa.Settings.from_dict(config)) as context, open(path, "rb") as stream:
        try:
            reader = c2pa.Reader.try_create(mime or _mime(Path(path)), stream, None, context)
        except c2pa.C2paError as err:
            return {"present": False, "error": str(err).splitlines()[0]}
        if reader is None:
            return {"present": False}
        with reader:
            active_manifest = reader.get_active_manifest() or {}
            state = reader.get_validation_state()
            results = (reader.get_validation_results() or {}).get("activeManifest", {})
    assertions = {a.get("label"): a.get("data") for a in active_manifest.get("assertions", [])}
    actions = (assertions.get("c2pa.actions.v2") or assertions.get("c2pa.actions") or {}).get("actions", [])
    signature = active_manifest.get("signature_info", {})
    return {
        "present": True,
        "state": state,
        "signer": {k: signature.get(k) for k in ("common_name", "issuer", "alg") if signature.get(k)},
        "created": any(a.get("action") == "c2pa.created" and a.get("digitalSourceType") == TRAINED for a in actions),
        "generator": assertions.get(ASSERTION),
        "failures": [r.get("code") for r in results.get("failure", [])],
    }


def _mime(path: Path) -> str:
    return {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".webp": "image/webp",
            ".gif": "image/gif", ".tif": "image/tiff", ".tiff": "image/tiff"}.get(path.suffix.lower(), "image/png")


__all__ = ["ASSERTION", "TRAINED", "active", "manifest", "read", "sign", "signing"]
