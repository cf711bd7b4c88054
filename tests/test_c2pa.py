"""C2PA manifests signed in the test with a certificate chain generated in the test, read fully offline."""

from __future__ import annotations

import datetime
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from vigie.analyzers import analyze_item
from vigie.media import Item

c2pa = pytest.importorskip("c2pa")
x509 = pytest.importorskip("cryptography.x509")
from cryptography.hazmat.primitives import hashes, serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec  # noqa: E402
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID  # noqa: E402

from vigie.analyzers.c2pa_manifest import C2PAAnalyzer  # noqa: E402

AI = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"
CAPTURE = "http://cv.iptc.org/newscodes/digitalsourcetype/digitalCapture"


def _name(cn: str) -> x509.Name:
    return x509.Name(
        [x509.NameAttribute(NameOID.COMMON_NAME, cn), x509.NameAttribute(NameOID.ORGANIZATION_NAME, "t")]
    )


@pytest.fixture(scope="module")
def chain() -> tuple[bytes, bytes, bytes]:
    """(signer chain PEM, signer key PEM, root PEM): a test CA and an ES256 claim-signing leaf."""
    now = datetime.datetime.now(datetime.UTC)
    root_key = ec.generate_private_key(ec.SECP256R1())
    root = (
        x509.CertificateBuilder()
        .subject_name(_name("test root"))
        .issuer_name(_name("test root"))
        .public_key(root_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(root_key.public_key()), critical=False)
        .sign(root_key, hashes.SHA256())
    )
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    leaf = (
        x509.CertificateBuilder()
        .subject_name(_name("test signer"))
        .issuer_name(root.subject)
        .public_key(leaf_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(True, False, False, False, False, False, False, False, False), critical=True
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(root_key.public_key()), critical=False
        )
        .sign(root_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    key = leaf_key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    return leaf.public_bytes(pem) + root.public_bytes(pem), key, root.public_bytes(pem)


def signed_jpeg(chain: tuple[bytes, bytes, bytes], source_type: str) -> bytes:
    signer = c2pa.Signer.from_info(c2pa.C2paSignerInfo(b"es256", chain[0], chain[1], None))
    manifest = {
        "claim_generator_info": [{"name": "test-generator", "version": "1.0"}],
        "title": "benign.jpg",
        "assertions": [
            {
                "label": "c2pa.actions.v2",
                "data": {"actions": [{"action": "c2pa.created", "digitalSourceType": source_type}]},
            }
        ],
    }
    src, dst = io.BytesIO(), io.BytesIO()
    Image.new("RGB", (64, 48), (10, 120, 200)).save(src, "JPEG")
    src.seek(0)
    with c2pa.Builder(manifest) as builder:
        builder.sign(signer, "image/jpeg", src, dst)
    return dst.getvalue()


def test_valid_trusted_and_invalid(chain: tuple[bytes, bytes, bytes]) -> None:
    data = signed_jpeg(chain, AI)
    [valid] = C2PAAnalyzer().analyze(Item("a.jpg", data, "image/jpeg"))
    assert valid.evidence["validation_state"] == "Valid" and valid.ai_generated is True
    assert valid.evidence["digital_source_types"] == [AI] and valid.generator
    # judged against the shipped C2PA Trust List, which the test's own CA is not on
    assert valid.evidence["trust_anchors"].startswith("C2PA Trust List (shipped")
    assert "signingCredential.untrusted" in valid.evidence["validation_status"]
    assert "not on the trust list" in (valid.summary or "")
    [trusted] = C2PAAnalyzer(chain[2].decode()).analyze(Item("a.jpg", data, "image/jpeg"))
    assert trusted.evidence["validation_state"] == "Trusted" and trusted.confidence > valid.confidence
    tampered = bytearray(data)
    tampered[-200] ^= 0xFF  # one byte of the image data: the hard binding no longer holds
    [invalid] = C2PAAnalyzer().analyze(Item("a.jpg", bytes(tampered), "image/jpeg"))
    assert invalid.evidence["validation_state"] == "Invalid" and invalid.confidence < 0.5


def test_capture_claim_is_not_ai_and_default_analyzers_include_c2pa(
    chain: tuple[bytes, bytes, bytes],
) -> None:
    found = [
        f
        for f in analyze_item(Item("c.jpg", signed_jpeg(chain, CAPTURE), "image/jpeg"))
        if f.analyzer == "c2pa"
    ]
    assert len(found) == 1 and found[0].ai_generated is False


def test_photos_without_manifests_are_quiet(photos: list[Path]) -> None:
    for p in photos[:5]:
        assert C2PAAnalyzer().analyze(Item(str(p), p.read_bytes(), "image/jpeg")) == []
    junk = b"\xff\xd8\xff\xe0" + b"c2pa" * 100
    found = C2PAAnalyzer().analyze(Item("junk.jpg", junk, "image/jpeg"))
    assert all(f.kind == "c2pa_unreadable" for f in found)


def test_trust_anchors_installed_by_the_operator_make_a_signer_trusted(
    chain: tuple[bytes, bytes, bytes], tmp_path: Path
) -> None:
    """`vigie c2pa-trust update` validates and installs anchors; `show` names them; `reset` goes back."""
    env = {**os.environ, "VIGIE_HOME": str(tmp_path / "home")}
    env.pop("VIGIE_C2PA_TRUST_ANCHORS", None)

    def vigie(*args: str) -> subprocess.CompletedProcess[str]:
        cmd = [sys.executable, "-m", "vigie", *args]
        return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)

    shipped = json.loads(vigie("c2pa-trust", "show", "--json").stdout)
    assert shipped["source"].startswith("C2PA Trust List") and len(shipped["anchors"]) >= 20

    broken = tmp_path / "broken.pem"  # a certificate cut short
    broken.write_text(chain[2].decode()[:200] + "\n-----END CERTIFICATE-----\n")
    bad = vigie("c2pa-trust", "update", str(broken))
    assert bad.returncode == 2 and "certificate 1 does not parse" in " ".join(bad.stderr.split())
    (tmp_path / "notes.txt").write_text("no certificates here")
    empty = vigie("c2pa-trust", "update", str(tmp_path / "notes.txt"))
    assert empty.returncode == 2 and "no PEM certificate" in " ".join(empty.stderr.split())

    from vigie.analyzers.c2pa_trust import shipped as shipped_list

    mine = tmp_path / "mine.pem"  # the operator's list: the C2PA list plus the test CA
    mine.write_text(shipped_list().pem + chain[2].decode())
    done = vigie("c2pa-trust", "update", str(mine))
    assert done.returncode == 0 and f"installed {len(shipped['anchors']) + 1} trust anchors" in done.stdout
    assert "installed by the operator" in json.loads(vigie("c2pa-trust", "show", "--json").stdout)["source"]

    photo = tmp_path / "signed.jpg"
    photo.write_bytes(signed_jpeg(chain, AI))

    def c2pa_evidence() -> dict[str, object]:
        [record] = [json.loads(x) for x in vigie("inspect", "--json", str(photo)).stdout.splitlines()]
        [found] = [f for f in record["findings"] if f["analyzer"] == "c2pa"]
        return found["evidence"]

    trusted = c2pa_evidence()
    assert trusted["validation_state"] == "Trusted"
    assert "installed by the operator" in str(trusted["trust_anchors"])
    assert "removed the installed anchors" in vigie("c2pa-trust", "reset").stdout
    assert c2pa_evidence()["validation_state"] == "Valid"
