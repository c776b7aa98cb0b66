"""tensorseal.hf.open_model_dir on directories sealed by the TS CLI's seal-dir: what it gives
back, and every swap, addition, removal and manifest change refused naming the file.

NumPy only (the torch and transformers loaders are in test_hf_torch.py). Needs Node.js and the
built CLI, like the cross-language tests.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save_file as save_plain

from helpers import run_cli
from tensorseal import TensorSealError, X25519Identity, X25519Recipient, generate_identity, seal_bytes
from tensorseal.hf import MANIFEST_NAME, is_sealed_model_dir, open_model_dir, parse_manifest
from tensorseal.hf.manifest import MANIFEST_CONTENT_TYPE, context_for

SECRET, PUBLIC = generate_identity()
IDS = [X25519Identity(SECRET)]


def make_model(d: Path, seed: int) -> dict[str, np.ndarray]:
    """A Hugging Face-shaped directory: config, tokenizer, two shards and their index."""
    d.mkdir(parents=True)
    g = np.random.default_rng(seed)
    t = {f"layer.{i}.weight": g.standard_normal((64, 40)).astype(np.float32) for i in range(4)}
    t["embed.weight"] = g.standard_normal((100, 8)).astype(np.float16)
    shards = {"model-00001-of-00002.safetensors": ["embed.weight", "layer.0.weight"],
              "model-00002-of-00002.safetensors": ["layer.1.weight", "layer.2.weight", "layer.3.weight"]}  # fmt: skip
    for shard, names in shards.items():
        save_plain({n: t[n] for n in names}, str(d / shard), {"format": "pt"})
    index = {"metadata": {"total_size": sum(a.nbytes for a in t.values())},
             "weight_map": {n: s for s, names in shards.items() for n in names}}  # fmt: skip
    (d / "model.safetensors.index.json").write_text(json.dumps(index))
    (d / "config.json").write_text(json.dumps({"model_type": "toy", "seed": seed}))
    (d / "tokenizer").mkdir()
    (d / "tokenizer" / "tokenizer.json").write_text(json.dumps({"vocab": {"a": 0, "b": seed}}))
    return t


def seal_dir(src: Path, out: Path, home: Path) -> None:
    run_cli(["seal-dir", str(src), "-o", str(out), "-r", PUBLIC, "--chunk-size", "16KiB"], {"TENSORSEAL_HOME": str(home)})


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """Two models sealed to the same recipient (a and b) and the tensors of a."""
    d = tmp_path_factory.mktemp("hf")
    tensors = make_model(d / "plain-a", 1)
    make_model(d / "plain-b", 2)
    seal_dir(d / "plain-a", d / "a.sealed", d / "home")
    seal_dir(d / "plain-b", d / "b.sealed", d / "home")
    return {"dir": d, "a": d / "a.sealed", "b": d / "b.sealed", "tensors": tensors}


def copy_of(models: dict[str, object], name: str, tmp_path: Path) -> Path:
    dst = tmp_path / f"{name}.copy"
    shutil.copytree(models[name], dst)  # type: ignore[arg-type]
    return dst


def refused(path: Path, code: str = "E_DECRYPT") -> TensorSealError:
    with pytest.raises(TensorSealError) as e:
        open_model_dir(path, identities=IDS).close()
    assert e.value.code == code, str(e.value)
    return e.value


def test_open_gives_files_as_bytes_and_shards_as_arrays(models) -> None:  # type: ignore[no-untyped-def]
    a, plain = models["a"], models["dir"] / "plain-a"
    assert is_sealed_model_dir(a) and not is_sealed_model_dir(plain)
    with open_model_dir(a, identities=IDS) as md:
        assert md.names() == sorted(p.relative_to(plain).as_posix() for p in plain.rglob("*") if p.is_file())
        assert md.read_bytes("config.json") == (plain / "config.json").read_bytes()
        assert md.read_json("tokenizer/tokenizer.json") == {"vocab": {"a": 0, "b": 1}}
        got = md.load_file("model-00002-of-00002.safetensors", framework="np")
        assert sorted(got) == ["layer.1.weight", "layer.2.weight", "layer.3.weight"]
        assert all(np.array_equal(got[n], models["tensors"][n]) for n in got)
        with pytest.raises(TensorSealError) as e:
            md.load_file("model-00002-of-00002.safetensors", framework="np")  # a shard loads once
        assert e.value.code == "E_USAGE"
        with md.safe_open("model-00001-of-00002.safetensors", framework="np") as f:
            assert np.array_equal(f.get_tensor("embed.weight"), models["tensors"]["embed.weight"])
        with pytest.raises(TensorSealError) as e:
            md.read_bytes("nope.json")
        assert e.value.code == "E_USAGE"


def test_shard_from_another_sealed_model_is_refused_naming_it(models, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    a = copy_of(models, "a", tmp_path)
    shard = "model-00002-of-00002.safetensors.tseal"
    shutil.copyfile(models["b"] / shard, a / shard)
    # The per-file loader opens the swapped file: it is a valid file for these keys.
    from tensorseal.safetensors import load_file

    assert load_file(a / shard, identities=IDS)
    e = refused(a)
    assert e.file == str(a / shard) and "belongs to another path or model" in str(e)


def test_shards_swapped_within_the_model_are_refused(models, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    a = copy_of(models, "a", tmp_path)
    one, two = a / "model-00001-of-00002.safetensors.tseal", a / "model-00002-of-00002.safetensors.tseal"
    one.rename(tmp_path / "x")
    two.rename(one)
    (tmp_path / "x").rename(two)
    e = refused(a)
    assert e.file == str(one) and "swapped or renamed" in e.message


def test_added_file_is_refused_naming_it(models, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    a = copy_of(models, "a", tmp_path)
    shutil.copyfile(a / "config.json.tseal", a / "tokenizer" / "extra.json.tseal")
    e = refused(a)
    assert e.file == str(a / "tokenizer" / "extra.json.tseal") and "not in the sealed manifest" in e.message


def test_removed_file_is_refused_naming_it(models, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    a = copy_of(models, "a", tmp_path)
    (a / "tokenizer" / "tokenizer.json.tseal").unlink()
    e = refused(a)
    assert e.file == str(a / "tokenizer" / "tokenizer.json.tseal") and "missing" in e.message


def test_tampered_manifest_is_refused(models, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    a = copy_of(models, "a", tmp_path)
    m = a / f"{MANIFEST_NAME}.tseal"
    data = bytearray(m.read_bytes())
    data[-20] ^= 1  # a ciphertext byte of the manifest's last chunk
    m.write_bytes(bytes(data))
    e = refused(a)
    assert e.file == str(m)


def test_manifest_of_another_model_is_refused(models, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    # Same file names, other model id: every file is bound to a's id, the manifest to b's.
    a = copy_of(models, "a", tmp_path)
    shutil.copyfile(models["b"] / f"{MANIFEST_NAME}.tseal", a / f"{MANIFEST_NAME}.tseal")
    e = refused(a)
    assert "belongs to another path or model" in e.message and e.file.startswith(str(a))


def test_no_manifest_is_a_usage_error(models, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    refused(models["dir"] / "plain-a", "E_USAGE")


def test_manifest_with_same_context_but_other_digest_is_refused_on_read(models, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    # A manifest sealed by someone holding only the public key, with a's model id and one
    # changed digest: the files open, but the changed one is refused when read.
    a = copy_of(models, "a", tmp_path)
    with open_model_dir(a, identities=IDS) as md:
        manifest = md.manifest
    changed = ("config.json", "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors")
    doc = {"version": 1, "model": manifest.model,
           "files": [{"path": f.path, "size": f.size, "sha256": ("0" * 64 if f.path in changed else f.sha256)}
                     for f in manifest.files]}  # fmt: skip
    forged = seal_bytes(json.dumps(doc).encode(), [X25519Recipient(PUBLIC)], content_type=MANIFEST_CONTENT_TYPE,
                        context=context_for(manifest.model, MANIFEST_NAME))  # fmt: skip
    (a / f"{MANIFEST_NAME}.tseal").write_bytes(forged)
    with open_model_dir(a, identities=IDS) as md:
        assert md.read_json("tokenizer/tokenizer.json")["vocab"]["b"] == 1
        for read, name in ((md.read_bytes, "config.json"),
                           (lambda p: md.load_file(p, framework="np"), "model-00001-of-00002.safetensors"),
                           (lambda p: md.safe_open(p, framework="np"), "model-00002-of-00002.safetensors")):  # fmt: skip
            with pytest.raises(TensorSealError) as e:
                read(name)
            assert e.value.code == "E_DECRYPT" and e.value.file == str(a / f"{name}.tseal")
            assert "SHA-256" in e.value.message
    with pytest.raises(TensorSealError) as e:
        md.read_bytes("tokenizer/tokenizer.json")  # closed with the with block
    assert e.value.code == "E_USAGE"


def test_manifest_sealed_for_another_path_is_refused(models, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    a = copy_of(models, "a", tmp_path)
    shutil.copyfile(a / "config.json.tseal", a / f"{MANIFEST_NAME}.tseal")
    e = refused(a, "E_CONTEXT")
    assert e.file == str(a / f"{MANIFEST_NAME}.tseal")


@pytest.mark.parametrize(
    ("doc", "why"),
    [
        ({"version": 2, "model": "a" * 32, "files": []}, "version 1"),
        ({"version": 1, "model": "A" * 32, "files": []}, "32 hex"),
        ({"version": 1, "model": "a" * 32, "files": [{"path": "../x", "size": 1, "sha256": "0" * 64}]}, "unsafe"),
        ({"version": 1, "model": "a" * 32, "files": [{"path": "b", "size": 1, "sha256": "0" * 64},
                                                     {"path": "a", "size": 1, "sha256": "0" * 64}]}, "unsorted"),
        ({"version": 1, "model": "a" * 32, "files": [{"path": MANIFEST_NAME, "size": 1, "sha256": "0" * 64}]}, "itself"),
        ({"version": 1, "model": "a" * 32, "files": [{"path": "a", "size": -1, "sha256": "0" * 64}]}, "bad size"),
        ({"version": 1, "model": "a" * 32, "files": [{"path": "a", "size": True, "sha256": "0" * 64}]}, "bad size"),
    ],
)  # fmt: skip
def test_parse_manifest_is_strict(doc: dict, why: str) -> None:  # type: ignore[type-arg]
    with pytest.raises(TensorSealError) as e:
        parse_manifest(json.dumps(doc).encode())
    assert e.value.code == "E_MALFORMED" and why in e.value.message


def test_a_symlink_to_a_directory_is_refused(models, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    a = copy_of(models, "a", tmp_path)
    os.symlink(tmp_path, a / "loop")
    e = refused(a, "E_USAGE")
    assert e.file == str(a / "loop")



# -- the public tier (FORMAT.md §2.5): config and tokenizer readable by anyone, bound by the manifest


@pytest.fixture(scope="module")
def public_model(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """A model sealed by seal-dir with a creation rule making every .json file public."""
    d = tmp_path_factory.mktemp("hfpub")
    repo = d / "repo"
    make_model(repo / "plain", 3)
    (repo / ".tensorseal.yaml").write_text("creation_rules:\n  - path_regex: '\\.json$'\n    tier: public\n")
    run_cli(["seal-dir", "plain", "-o", "sealed", "-r", PUBLIC, "--chunk-size", "16KiB"],
            {"TENSORSEAL_HOME": str(d / "home")}, cwd=str(repo))  # fmt: skip
    return {"plain": repo / "plain", "sealed": repo / "sealed"}


def test_public_files_are_readable_without_a_key_and_listed_in_the_manifest(public_model, tmp_path) -> None:  # type: ignore[no-untyped-def]
    import io

    from tensorseal import SealedFile, read_header

    sealed, plain = public_model["sealed"], public_model["plain"]
    config = sealed / "config.json.tseal"
    d = read_header(io.BytesIO(config.read_bytes())).descriptor
    assert (d.encrypted, d.tier, d.suite) == (False, "public", 2)
    shard = sealed / "model-00001-of-00002.safetensors.tseal"
    assert read_header(io.BytesIO(shard.read_bytes())).descriptor.encrypted
    with SealedFile(config) as sf:  # no identity at all
        assert sf.read_all() == (plain / "config.json").read_bytes()
    with pytest.raises(TensorSealError) as e:
        SealedFile(shard)
    assert e.value.code == "E_NO_IDENTITY"
    with open_model_dir(sealed, identities=IDS) as md:
        assert not md.entry("config.json").encrypted
        assert not md.entry("tokenizer/tokenizer.json").encrypted
        assert md.entry("model-00001-of-00002.safetensors").encrypted
        assert md.read_json("config.json") == json.loads((plain / "config.json").read_text())
        assert md.read_bytes("tokenizer/tokenizer.json") == (plain / "tokenizer" / "tokenizer.json").read_bytes()


def _public_file_like(sealed: Path, path: str, data: bytes) -> bytes:
    """What an attacker with write access can make: a valid public file with the right context."""
    import io

    from tensorseal import read_header

    ctx = read_header(io.BytesIO((sealed / "config.json.tseal").read_bytes())).descriptor.context
    model = ctx["tensorseal.model"]
    return seal_bytes(data, [], public=True, context=context_for(model, path))


def test_a_swapped_public_config_is_refused(public_model, tmp_path) -> None:  # type: ignore[no-untyped-def]
    d = tmp_path / "swapped"
    shutil.copytree(public_model["sealed"], d)
    forged = json.dumps({"model_type": "bad", "seed": 3}).encode()  # same size as the original
    assert len(forged) == len((public_model["plain"] / "config.json").read_bytes())
    (d / "config.json.tseal").write_bytes(_public_file_like(d, "config.json", forged))
    with open_model_dir(d, identities=IDS) as md:
        with pytest.raises(TensorSealError) as e:
            md.read_bytes("config.json")
    assert e.value.code == "E_DECRYPT" and "SHA-256" in str(e.value)


def test_a_public_file_in_place_of_an_encrypted_shard_is_refused(public_model, tmp_path) -> None:  # type: ignore[no-untyped-def]
    d = tmp_path / "downgraded"
    shutil.copytree(public_model["sealed"], d)
    name = "model-00001-of-00002.safetensors"
    plain = (public_model["plain"] / name).read_bytes()
    (d / f"{name}.tseal").write_bytes(_public_file_like(d, name, plain))
    e = refused(d, "E_NOT_ENCRYPTED")
    assert name in str(e)


def test_a_public_manifest_is_refused(public_model, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The manifest is the root of authenticity: anyone can write a public one listing forged
    digests, so a reader requires the manifest to be encrypted (for the directory's keys)."""
    import hashlib

    d = tmp_path / "forged-manifest"
    shutil.copytree(public_model["sealed"], d)
    forged = json.dumps({"model_type": "bad", "seed": 3}).encode()
    (d / "config.json.tseal").write_bytes(_public_file_like(d, "config.json", forged))
    with open_model_dir(public_model["sealed"], identities=IDS) as md:
        entries = [
            {"path": e.path, "size": e.size, "sha256": e.sha256, **({} if e.encrypted else {"encrypted": False})}
            for e in md.manifest.files
        ]
        model = md.manifest.model
    for e in entries:
        if e["path"] == "config.json":
            e["sha256"] = hashlib.sha256(forged).hexdigest()
    doc = json.dumps({"version": 1, "model": model, "files": entries}).encode()
    (d / f"{MANIFEST_NAME}.tseal").write_bytes(
        seal_bytes(doc, [], public=True, content_type=MANIFEST_CONTENT_TYPE, context=context_for(model, MANIFEST_NAME))
    )
    e = refused(d, "E_NOT_ENCRYPTED")
    assert MANIFEST_NAME in str(e)
