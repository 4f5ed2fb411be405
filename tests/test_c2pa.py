"""Signed C2PA provenance: sample --sign-cert/--sign-key writes a manifest that c2pa-python validates."""

from __future__ import annotations

import datetime as dt
import io
import json
from pathlib import Path

import pytest
from PIL import Image

from ganforge.cli import main
from ganforge.errors import UserError
from ganforge.safeguards import manifest

c2pa = pytest.importorskip("c2pa", reason="c2pa-python is not installed (pip install 'ganforge[c2pa]')")
x509 = pytest.importorskip("cryptography.x509")


def _name(common_name: str) -> "x509.Name":
    from cryptography.x509.oid import NameOID

    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, "ganforge tests")])


def _usage(sign: bool) -> "x509.KeyUsage":
    return x509.KeyUsage(digital_signature=sign, content_commitment=False, key_encipherment=False, data_encipherment=False,
                         key_agreement=False, key_cert_sign=not sign, crl_sign=not sign, encipher_only=False,
                         decipher_only=False)


@pytest.fixture(scope="module")
def chain(tmp_path_factory) -> dict[str, Path]:
    """A test CA and a P-256 signing certificate it issued (C2PA refuses self-signed signers)."""
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID

    now = dt.datetime.now(dt.timezone.utc)
    ca_key, leaf_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())

    def certificate(subject, issuer, public, signer, extensions):
        builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer).public_key(public)
                   .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
                   .not_valid_after(now + dt.timedelta(days=30)))
        for extension, critical in extensions:
            builder = builder.add_extension(extension, critical=critical)
        return builder.sign(signer, hashes.SHA256())

    ca = certificate(_name("ganforge test CA"), _name("ganforge test CA"), ca_key.public_key(), ca_key, [
        (x509.BasicConstraints(ca=True, path_length=None), True), (_usage(sign=False), True),
        (x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)])
    leaf = certificate(_name("ganforge test signer"), _name("ganforge test CA"), leaf_key.public_key(), ca_key, [
        (x509.BasicConstraints(ca=False, path_length=None), True), (_usage(sign=True), True),
        (x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), False),
        (x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False)])
    folder = tmp_path_factory.mktemp("pki")
    pem = serialization.Encoding.PEM
    (folder / "chain.pem").write_bytes(leaf.public_bytes(pem) + ca.public_bytes(pem))
    (folder / "ca.pem").write_bytes(ca.public_bytes(pem))
    (folder / "signer.key").write_bytes(leaf_key.private_bytes(pem, serialization.PrivateFormat.PKCS8,
                                                               serialization.NoEncryption()))
    return {"cert": folder / "chain.pem", "key": folder / "signer.key", "ca": folder / "ca.pem"}


def test_a_signed_sample_carries_a_manifest_c2pa_validates(tiny_dcgan_run, chain, tmp_path, capsys):
    out = tmp_path / "grid.png"
    assert main(["sample", str(tiny_dcgan_run.dir), "--n", "4", "--out", str(out),
                 "--sign-cert", str(chain["cert"]), "--sign-key", str(chain["key"])]) == 0
    # c2pa-python's own reader, trusting the test CA: a good signature over these very bytes
    settings = c2pa.Settings.from_dict({"trust": {"user_anchors": chain["ca"].read_text()}})
    with c2pa.Context(settings=settings) as context, open(out, "rb") as stream, \
            c2pa.Reader("image/png", stream, None, context) as reader:
        assert reader.get_validation_state() == "Trusted"
        active = reader.get_active_manifest()
    assertions = {a["label"]: a["data"] for a in active["assertions"]}
    actions = (assertions.get("c2pa.actions.v2") or assertions["c2pa.actions"])["actions"]
    assert actions[0]["action"] == "c2pa.created" and actions[0]["digitalSourceType"] == manifest.TRAINED
    generator_id = Image.open(out).text["generator"]
    assert assertions[manifest.ASSERTION]["generator"] == generator_id and assertions[manifest.ASSERTION]["seed"] == "0"
    assert any(info.get("name") == "ganforge" for info in active["claim_generator_info"])
    # ganforge verify reports it: valid without trust anchors, trusted with them; the watermark is there too
    capsys.readouterr()
    main(["verify", str(out), "--json"])
    report = json.loads(capsys.readouterr().out)
    assert report["c2pa"]["present"] and report["c2pa"]["state"] == "Valid" and report["c2pa"]["created"]
    assert report["c2pa"]["failures"] == ["signingCredential.untrusted"] and report["watermark"]["matches_metadata"]
    main(["verify", str(out), "--json", "--trust-anchors", str(chain["ca"])])
    report = json.loads(capsys.readouterr().out)
    assert report["c2pa"]["state"] == "Trusted" and report["c2pa"]["signer"]["common_name"] == "ganforge test signer"
    assert report["c2pa"]["generator"]["generator"] == generator_id


def test_a_changed_or_resaved_file_loses_its_proof(tiny_dcgan_run, chain, tmp_path):
    out = tmp_path / "grid.png"
    main(["sample", str(tiny_dcgan_run.dir), "--n", "4", "--out", str(out),
          "--sign-cert", str(chain["cert"]), "--sign-key", str(chain["key"])])
    image = Image.open(out)
    pixels = image.copy()
    pixels.putpixel((0, 0), 255 - image.getpixel((0, 0)))  # one pixel changed, re-encoded with the manifest kept
    data = out.read_bytes()
    changed = tmp_path / "changed.png"
    buffer = io.BytesIO()
    pixels.save(buffer, format="PNG")
    changed.write_bytes(_swap_image_data(data, buffer.getvalue()))
    report = manifest.read(changed, str(chain["ca"]))
    assert report["present"] and report["state"] == "Invalid" and "assertion.dataHash.mismatch" in report["failures"]
    resaved = tmp_path / "resaved.png"
    image.save(resaved)  # any re-save drops the manifest: the watermark is what survives
    assert manifest.read(resaved)["present"] is False


def _swap_image_data(signed: bytes, other: bytes) -> bytes:
    """``signed`` with its IDAT chunks replaced by ``other``'s (the C2PA chunk kept): pixels changed after signing."""
    def chunks(data: bytes) -> list[tuple[bytes, bytes]]:
        out, i = [], 8
        while i < len(data):
            length = int.from_bytes(data[i:i + 4], "big")
            out.append((data[i + 4:i + 8], data[i:i + 12 + length]))
            i += 12 + length
        return out

    idat = b"".join(raw for kind, raw in chunks(other) if kind == b"IDAT")
    kept = [raw for kind, raw in chunks(signed) if kind != b"IDAT"]
    end = next(i for i, raw in enumerate(kept) if raw[4:8] == b"IEND")
    return signed[:8] + b"".join(kept[:end]) + idat + b"".join(kept[end:])


def test_signing_mistakes_are_one_line_errors(tiny_dcgan_run, chain, tmp_path, capsys):
    base = ["sample", str(tiny_dcgan_run.dir), "--n", "1", "--out", str(tmp_path / "x.png")]
    for flags, message in ((["--sign-cert", str(chain["cert"])], "give both --sign-cert and --sign-key"),
                           (["--sign-cert", str(tmp_path / "no.pem"), "--sign-key", str(chain["key"])], "no file at"),
                           (["--sign-cert", str(chain["cert"]), "--sign-key", str(chain["cert"])], "not an unencrypted PEM"),
                           (["--sign-cert", str(chain["ca"]), "--sign-key", str(chain["key"])], "C2PA signing failed")):
        capsys.readouterr()
        assert main([*base, *flags]) != 0
        err = capsys.readouterr().err.strip()
        assert message in err and len(err.splitlines()) == 1, err


def test_the_trainer_signs_its_sample_grids_from_the_config(chain, tmp_path):
    import ganforge
    from tiny_configs import TINY_DIGITS

    run = ganforge.train("dcgan-digits", out=tmp_path / "run", overrides={
        **TINY_DIGITS, "train.steps": 2, "train.sample_every": 2, "train.sign_cert": str(chain["cert"]),
        "train.sign_key": str(chain["key"])})
    report = manifest.read(run.latest_samples, str(chain["ca"]))
    assert report["state"] == "Trusted" and report["created"] and report["generator"]["run"] == run.config.name
    with pytest.raises(UserError, match="train.sign_key: no file at"):
        ganforge.train("dcgan-digits", out=tmp_path / "bad", overrides={
            **TINY_DIGITS, "train.steps": 2, "train.sign_cert": str(chain["cert"]), "train.sign_key": str(tmp_path / "no.key")})
