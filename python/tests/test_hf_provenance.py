"""Signed provenance in Python: directories sealed and signed by the TS CLI (``seal-dir --sign``)
checked by tensorseal.hf with ``require_signer=`` before anything is decrypted; unsigned,
foreign-signed, swapped and re-signed models refused with ``E_SIGNATURE``.

Needs Node.js and the built CLI, like the cross-language tests.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from safetensors.numpy import save_file as save_plain

from helpers import REPO, run_cli
from tensorseal import SignatureError, TensorSealError, X25519Identity, generate_identity
from tensorseal.hf import open_model_dir, verify_sealed_dir
from tensorseal.hf.provenance import key_hint, load_signer, parse_statement, verify_bundle, verify_sealed_file

SECRET, PUBLIC = generate_identity()
IDS = [X25519Identity(SECRET)]


def key_pair(d: Path, name: str) -> tuple[Path, Path]:
    k = ec.generate_private_key(ec.SECP256R1())
    priv, pub = d / f"{name}.pem", d / f"{name}.pub"
    priv.write_bytes(k.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    pub.write_bytes(k.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    return priv, pub


def make_model(d: Path, seed: int) -> dict[str, np.ndarray]:
    d.mkdir(parents=True)
    g = np.random.default_rng(seed)
    t = {"w": g.standard_normal((32, 16)).astype(np.float32)}
    save_plain(t, str(d / "model.safetensors"), {"format": "pt"})
    (d / "config.json").write_text(json.dumps({"model_type": "toy"}))
    (d / ".gitattributes").write_text("*.safetensors filter=lfs\n")
    return t


def seal(src: Path, out: Path, home: Path, key: Path | None) -> None:
    sign = ["--sign", str(key)] if key else []
    run_cli(["seal-dir", str(src), "-o", str(out), "-r", PUBLIC, "--chunk-size", "16KiB", *sign], {"TENSORSEAL_HOME": str(home)})


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("prov")
    prod_priv, prod_pub = key_pair(d, "producer")
    other_priv, other_pub = key_pair(d, "other")
    make_model(d / "plain", 1)
    seal(d / "plain", d / "a.sealed", d / "home", prod_priv)
    seal(d / "plain", d / "b.sealed", d / "home", prod_priv)
    seal(d / "plain", d / "x.sealed", d / "home", other_priv)
    seal(d / "plain", d / "u.sealed", d / "home", None)
    return {"dir": d, "pub": prod_pub, "other_pub": other_pub, "other_priv": other_priv}


def copy(env: dict[str, Path], name: str, to: str) -> Path:
    dst = env["dir"] / to
    shutil.rmtree(dst, ignore_errors=True)
    shutil.copytree(env["dir"] / name, dst)
    return dst


def test_signed_model_opens_with_its_signer(env: dict[str, Path]) -> None:
    b = verify_sealed_dir(env["dir"] / "a.sealed", env["pub"])
    assert [f.path for f in b.files] == [".gitattributes", "config.json", "model.safetensors"]
    for signer in (env["pub"], str(env["pub"]), env["pub"].read_bytes()):
        with open_model_dir(env["dir"] / "a.sealed", identities=IDS, require_signer=signer) as md:
            assert md.read_json("config.json") == {"model_type": "toy"}
            assert md.load_file("model.safetensors", framework="np")["w"].shape == (32, 16)


def test_signed_model_opens_without_a_required_signer(env: dict[str, Path]) -> None:
    with open_model_dir(env["dir"] / "a.sealed", identities=IDS) as md:
        assert "config.json" in md


def test_unsigned_is_refused(env: dict[str, Path]) -> None:
    with pytest.raises(SignatureError, match="unsigned"):
        open_model_dir(env["dir"] / "u.sealed", identities=IDS, require_signer=env["pub"])


def test_another_signer_is_refused(env: dict[str, Path]) -> None:
    with pytest.raises(SignatureError, match="another key") as e:
        open_model_dir(env["dir"] / "x.sealed", identities=IDS, require_signer=env["pub"])
    assert e.value.code == "E_SIGNATURE"
    with pytest.raises(SignatureError, match="another key"):
        open_model_dir(env["dir"] / "a.sealed", identities=IDS, require_signer=env["other_pub"])


@pytest.mark.parametrize("name", ["model.safetensors.tseal", "tensorseal-manifest.json.tseal"])
def test_swapped_file_from_another_signed_sealing_is_refused(env: dict[str, Path], name: str) -> None:
    d = copy(env, "a.sealed", "swap.sealed")
    shutil.copyfile(env["dir"] / "b.sealed" / name, d / name)
    with pytest.raises(SignatureError, match="not the signed file"):
        open_model_dir(d, identities=IDS, require_signer=env["pub"])


def test_added_file_and_modified_statement_are_refused(env: dict[str, Path]) -> None:
    d = copy(env, "a.sealed", "add.sealed")
    (d / "evil.py").write_text("import os")
    with pytest.raises(SignatureError, match="not in the signed model"):
        verify_sealed_dir(d, env["pub"])
    (d / "evil.py").unlink()
    sig = json.loads((d / "model.sig").read_text())
    import base64

    st = base64.b64decode(sig["dsseEnvelope"]["payload"]).replace(b'"size": ', b'"size": 1', 1)
    sig["dsseEnvelope"]["payload"] = base64.b64encode(st).decode()
    (d / "model.sig").write_text(json.dumps(sig))
    with pytest.raises(SignatureError, match="does not verify"):
        verify_sealed_dir(d, env["pub"])


def test_model_resigned_by_another_key_is_refused(env: dict[str, Path]) -> None:
    d = copy(env, "a.sealed", "resigned.sealed")
    shutil.copyfile(env["dir"] / "x.sealed" / "model.sig", d / "model.sig")
    with pytest.raises(SignatureError):
        verify_sealed_dir(d, env["pub"])


def test_private_key_as_signer_is_refused(env: dict[str, Path]) -> None:
    with pytest.raises(TensorSealError, match="PUBLIC key") as e:
        load_signer(env["other_priv"])
    assert e.value.code == "E_KEY"
    assert key_hint(load_signer(env["pub"])) == json.loads((env["dir"] / "a.sealed" / "model.sig").read_text())[
        "verificationMaterial"
    ]["publicKey"]["hint"]


@pytest.fixture(scope="module")
def signed_file(env: dict[str, Path]) -> dict[str, Path]:
    d = env["dir"]
    plain = d / "w.safetensors"
    save_plain({"w": np.arange(600, dtype=np.float32).reshape(20, 30)}, str(plain))
    home = {"TENSORSEAL_HOME": str(d / "home")}
    run_cli(["seal", str(plain), "-r", PUBLIC, "--chunk-size", "16KiB", "--sign", str(d / "producer.pem")], home)
    run_cli(["seal", str(plain), "-o", str(d / "again.tseal"), "-r", PUBLIC], home)
    return {"sealed": d / "w.safetensors.tseal", "again": d / "again.tseal"}


def test_load_file_require_signer(env: dict[str, Path], signed_file: dict[str, Path]) -> None:
    from tensorseal.safetensors import load_file

    t = load_file(signed_file["sealed"], identities=IDS, require_signer=env["pub"])
    assert t["w"].shape == (20, 30)
    with pytest.raises(SignatureError, match="another key"):
        load_file(signed_file["sealed"], identities=IDS, require_signer=env["other_pub"])
    with pytest.raises(SignatureError, match="unsigned"):
        load_file(signed_file["again"], identities=IDS, require_signer=env["pub"])
    # The same plaintext sealed again is another sealed file: its digest is not the signed one.
    d = env["dir"] / "swapped.tseal"
    shutil.copyfile(signed_file["again"], d)
    shutil.copyfile(str(signed_file["sealed"]) + ".sig", str(d) + ".sig")
    with pytest.raises(SignatureError, match="not the signed file"):
        load_file(d, identities=IDS, require_signer=env["pub"])


def test_torch_load_file_require_signer(env: dict[str, Path], signed_file: dict[str, Path]) -> None:
    if os.environ.get("TENSORSEAL_REQUIRE_ALL") != "1":  # in CI a missing torch fails
        pytest.importorskip("torch")
    from tensorseal.torch import load_file as torch_load

    t = torch_load(signed_file["sealed"], identities=IDS, require_signer=env["pub"])
    assert tuple(t["w"].shape) == (20, 30)
    with pytest.raises(SignatureError):
        torch_load(signed_file["sealed"], identities=IDS, require_signer=env["other_pub"])


def test_plaintext_check_refuses_other_plaintext(env: dict[str, Path], signed_file: dict[str, Path]) -> None:
    from tensorseal.hf.provenance import FileBinding, plaintext_check

    b = verify_sealed_file(signed_file["sealed"], env["pub"])
    assert isinstance(b, FileBinding)
    check = plaintext_check(FileBinding(b.size, "0" * 64, b.sealed), b"")
    with pytest.raises(SignatureError, match="not the signed one"):
        check(memoryview(b"x" * (b.size)))


MODEL_SIGNING = REPO / ".venv-model-signing" / "bin" / "model_signing"


def test_model_signing_signature_verifies_with_our_dsse_code(env: dict[str, Path]) -> None:
    """The OpenSSF tool's own key-based signature (scripts/setup-test-deps.sh installs it) passes
    verify_bundle with the right key only, and binds no sealed files."""
    if not MODEL_SIGNING.exists():
        if os.environ.get("TENSORSEAL_REQUIRE_ALL") == "1":
            pytest.fail(f"{MODEL_SIGNING} is missing (run scripts/setup-test-deps.sh)")
        pytest.skip(f"{MODEL_SIGNING} is missing")
    d = env["dir"]
    sig = d / "plain.sig"
    args = ["sign", "key", "--private_key", str(d / "producer.pem"), "--signature", str(sig), str(d / "plain")]
    subprocess.run([str(MODEL_SIGNING), *args], check=True, capture_output=True, timeout=120)
    doc = json.loads(sig.read_text())
    payload = verify_bundle(doc, load_signer(env["pub"]))
    names = [r["name"] for r in json.loads(payload)["predicate"]["resources"]]
    assert names == ["config.json", "model.safetensors"]
    with pytest.raises(SignatureError, match="another key"):
        verify_bundle(doc, load_signer(env["other_pub"]))
    with pytest.raises(SignatureError, match="does not bind sealed files"):
        parse_statement(payload)
