"""The shell examples of docs/INTEGRATIONS.md run as written, and every example block of that doc
is run by some test.

Each ```sh block is read from the doc (so the doc and this test cannot drift) and run as one
`bash -euo pipefail` script in a fresh directory holding the inputs the doc names, with
`tensorseal` (this build's dist/ CLI) and this venv's `python3` on PATH; then the outcome the
text around the block states is checked: files opened identical to the plaintext, the plaintext
in /dev/shm only while the command runs, and the refusals the text promises (a tampered sealed
directory or object, an existing --seal-outputs directory) refused. Object storage runs against
moto's S3 server on loopback (.venv-moto); missing moto, torch or transformers skips those
tests, except under TENSORSEAL_REQUIRE_ALL=1, where it fails them.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file, save_file

from helpers import REPO, node, require_cli
from moto_s3 import REGION, boto3_client, moto_s3

DOC = "docs/INTEGRATIONS.md"
FENCES = {"sh", "ts", "python", "text"}
# The test that runs each section's ```sh and ```python blocks (every ```ts block of the doc is
# run by test/package/pack.test.ts; ```text blocks are synopses and sample output, never run).
RUN_BY = {
    ("sh", "Model directories"): "python/tests/test_integrations_docs.py",
    ("sh", "Python: in process"): "python/tests/test_integrations_docs.py",
    ("python", "Python: in process"): "python/tests/test_hf_torch.py",
    ("sh", "Signed model directories"): "python/tests/test_provenance_docs.py",
    ("python", "Signed model directories"): "python/tests/test_provenance_docs.py",
    ("sh", "Examples"): "python/tests/test_integrations_docs.py",
    ("sh", "Object storage"): "python/tests/test_integrations_docs.py",
    ("python", "Object storage from Python"): "python/tests/test_remote_docs.py",
}


def blocks() -> list[tuple[str, str, str]]:
    """(fence language, nearest heading above, code) of every fenced block of the doc."""
    out: list[tuple[str, str, str]] = []
    heading, lang, code = "", None, []  # type: ignore[var-annotated]
    for line in (REPO / DOC).read_text(encoding="utf-8").split("\n"):
        if lang is not None:
            if line == "```":
                out.append((lang, heading, "\n".join(code) + "\n"))
                lang = None
            else:
                code.append(line)
        elif line.startswith("```"):
            lang, code = line[3:], []
        elif line.startswith("#"):
            heading = line.lstrip("#").strip()
    return out


def block(lang: str, heading: str) -> str:
    found = [c for lg, h, c in blocks() if lg == lang and h == heading]
    assert len(found) == 1, f"{DOC} should have one {lang} block under {heading!r}, has {len(found)}"
    return found[0]


def commands(script: str) -> list[str]:
    """The script's lines with backslash continuations joined."""
    return script.replace("\\\n", " ").split("\n")


def test_every_example_block_is_run_by_a_test() -> None:
    seen = set()
    for lang, heading, _ in blocks():
        assert lang in FENCES, f"{DOC}, {heading!r}: a ```{lang} block; use sh, ts, python, or text for what must not run"
        if lang in ("sh", "python"):
            assert (lang, heading) in RUN_BY, f"{DOC}, {heading!r}: a {lang} block no test runs (add it to RUN_BY and run it)"
            seen.add((lang, heading))
    assert seen == set(RUN_BY), f"RUN_BY lists blocks the doc no longer has: {set(RUN_BY) - seen}"
    for (lang, heading), test in RUN_BY.items():
        text = (REPO / test).read_text(encoding="utf-8")
        assert heading in text, f"{test} does not name {heading!r}: it cannot be the test that runs that {lang} block"


@pytest.fixture
def work(tmp_path: Path) -> Path:
    bin_dir = tmp_path / ".bin"
    bin_dir.mkdir()
    (bin_dir / "tensorseal").write_text(f'#!/bin/sh\nexec "{node()}" "{require_cli()}" "$@"\n')
    (bin_dir / "tensorseal").chmod(0o755)
    return tmp_path


def run_shell(script: str, cwd: Path, env: dict[str, str] | None = None, drop: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
    """Runs a doc's script with tensorseal and this venv's python3 first on PATH; `drop`: prefixes
    of inherited variables to leave out."""
    path = os.pathsep.join([str(cwd / ".bin"), str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    inherited = {k: v for k, v in os.environ.items() if not (drop and k.startswith(drop))}
    full = {**inherited, "PATH": path, "HOME": str(cwd / ".home"), "TENSORSEAL_HOME": str(cwd / ".home" / ".tensorseal"), **(env or {})}
    return subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=cwd, env=full, capture_output=True, text=True,
                          timeout=300, stdin=subprocess.DEVNULL)  # fmt: skip


def ok(r: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert r.returncode == 0, f"the example failed ({r.returncode}):\n{r.stdout}\n{r.stderr}"
    return r


def sha256(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def weights(path: Path, seed: int) -> dict[str, np.ndarray]:
    g = np.random.default_rng(seed)
    t = {"embed.weight": g.standard_normal((64, 16)).astype(np.float32), "lm_head.weight": g.standard_normal((16, 64)).astype(np.float32)}
    save_file(t, str(path), {"format": "np"})
    return t


def tiny_model(d: Path, seed: int) -> dict[str, np.ndarray]:
    """`./tiny-model` of the doc: a config.json and a model.safetensors."""
    d.mkdir()
    (d / "config.json").write_text(json.dumps({"model_type": "toy", "seed": seed}))
    return weights(d / "model.safetensors", seed)


def test_model_directories_example(work: Path) -> None:
    tiny_model(work / "tiny-model", 1)
    r = ok(run_shell(block("sh", "Model directories"), work))
    assert "the same files" in r.stdout
    assert tree(work / "tiny-model.opened") == tree(work / "tiny-model")
    assert sorted(tree(work / "tiny-model.sealed")) == ["config.json.tseal", "model.safetensors.tseal", "tensorseal-manifest.json.tseal"]
    assert all(b"toy" not in b for b in tree(work / "tiny-model.sealed").values()), "the config is sealed"

    # "A missing ... file fails the whole open with exit 5 ... and creates nothing": the doc's
    # own open-dir line, on the sealed directory less one file.
    open_line = next(c for c in commands(block("sh", "Model directories")) if c.startswith("tensorseal open-dir"))
    subprocess.run(["rm", "-r", str(work / "tiny-model.opened"), str(work / "tiny-model.sealed" / "config.json.tseal")], check=True)
    r = run_shell(open_line, work)
    assert r.returncode == 5, r.stderr
    assert "config.json" in r.stderr
    assert not (work / "tiny-model.opened").exists()


def test_python_in_process_seal_dir_example(work: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The shell block seals a save_pretrained directory; the Python block below it loads it."""
    if os.environ.get("TENSORSEAL_REQUIRE_ALL") == "1":
        import torch  # noqa: F401 - a missing torch or transformers must fail the run
        import transformers  # noqa: F401
    else:
        pytest.importorskip("torch")
        pytest.importorskip("transformers")
    from test_hf_torch import MARKER, logits, tiny_gpt2
    from tokenizers import Tokenizer, models, pre_tokenizers

    model = tiny_gpt2(3)
    model.save_pretrained(work / "tiny-gpt2", max_shard_size="60KB")
    tok = Tokenizer(models.WordLevel({"[UNK]": 0, "sealed": 1, "weights": 2}, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.save(str(work / "tiny-gpt2" / "tokenizer.json"))
    ok(run_shell(block("sh", "Python: in process"), work))
    assert (work / "tiny-gpt2.sealed" / "tensorseal-manifest.json.tseal").is_file()

    monkeypatch.chdir(work)
    ns: dict[str, object] = {}
    exec(compile(block("python", "Python: in process"), DOC, "exec"), ns)  # noqa: S102 - the docs' own example
    import torch

    assert torch.equal(logits(ns["model"]), logits(model))
    assert ns["config"]["tensorseal_marker"] == MARKER  # type: ignore[index]
    assert ns["tokenizer"].encode("sealed weights").ids == [1, 2]  # type: ignore[attr-defined]


def test_exec_examples(work: Path) -> None:
    (work / "tiny.gguf").write_bytes(b"GGUF" + os.urandom(50_000))
    tiny_model(work / "tiny-model", 2)
    base = weights(work / "model.safetensors", 3)
    repo = work / "model_repository" / "simple"
    (repo / "1").mkdir(parents=True)
    (repo / "config.pbtxt").write_text('name: "simple"\nbackend: "onnxruntime"\n')
    (repo / "1" / "model.onnx").write_bytes(os.urandom(30_000))

    script = block("sh", "Examples")
    r = ok(run_shell(script, work))

    # runtime.py printed "<sha256> <path>" for each file it read: every plaintext file, at the
    # path the doc names (a sealed directory X.sealed opens as X), in a tensorseal-exec
    # directory of /dev/shm that is gone now.
    printed = re.findall(r"^([0-9a-f]{64}) (\S+)$", r.stdout, flags=re.M)
    expected = {"tiny.gguf": "/m0/tiny.gguf", "model.safetensors": "/m0/model.safetensors"}
    expected |= {f"tiny-model/{n}": f"/llm/tiny-model/{n}" for n in tree(work / "tiny-model")}
    expected |= {f"model_repository/{n}": f"/repo/repo/{n}" for n in tree(work / "model_repository")}
    assert len(printed) == len(expected), r.stdout
    for plain, suffix in expected.items():
        hits = [p for d, p in printed if p.endswith(suffix) and d == sha256(work / plain)]
        assert len(hits) == 1, f"{plain}: no line '<its sha256> ...{suffix}' in\n{r.stdout}"
        assert hits[0].startswith("/dev/shm/tensorseal-exec-"), hits[0]
        assert not os.path.exists(hits[0]), f"{hits[0]}: the plaintext outlived exec"

    # The fine-tuning outputs: sealed to the owner, opened back on "the machine allowed".
    sealed = tree(work / "run-42.sealed")
    assert sorted(sealed) == ["ckpt-100.safetensors.tseal", "tensorseal-manifest.json.tseal"]
    ckpt = load_file(str(work / "run-42" / "ckpt-100.safetensors"))
    assert sorted(ckpt) == sorted(base) and all(np.array_equal(ckpt[k], base[k] * 2) for k in base)
    tail = (work / "run-42" / "ckpt-100.safetensors").read_bytes()[-1024:]
    assert all(tail not in b for b in sealed.values()), "run-42.sealed holds plaintext"

    # "Running the fine-tuning line again is refused before anything is decrypted (exit 2)".
    setup = [c for c in commands(script) if re.match(r"(partner|owner)=", c)]
    again = next(c for c in commands(script) if "--seal-outputs" in c)
    before = tree(work / "run-42.sealed")
    r = run_shell("\n".join([*setup, again]), work)
    assert r.returncode == 2, f"{r.returncode}: {r.stderr}"
    assert "run-42.sealed" in r.stderr
    assert tree(work / "run-42.sealed") == before


def test_object_storage_example(work: Path) -> None:
    weights(work / "model.safetensors", 4)
    with moto_s3() as endpoint:
        c = boto3_client(endpoint)
        c.create_bucket(Bucket="models")
        # The settings the doc names (dummy credentials: moto takes any), and none of the
        # machine's own AWS settings, which could point the example elsewhere.
        env = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": REGION,
               "AWS_ENDPOINT_URL": endpoint}  # fmt: skip
        script = block("sh", "Object storage")
        r = ok(run_shell(script, work, env, drop=("AWS_", "TENSORSEAL_S3_")))
        digest = sha256(work / "model.safetensors")
        assert sha256(work / "model.opened.safetensors") == digest
        assert re.search(rf"^{digest}  -$", r.stdout, flags=re.M), f"the piped digest is not the plaintext's:\n{r.stdout}"
        assert "lm_head.weight" in r.stdout, f"inspect --tensors lists the tensors:\n{r.stdout}"
        assert re.search(r"^OK .*model\.safetensors\.tseal", r.stdout, flags=re.M), r.stdout
        assert "X-Amz-Signature" not in r.stdout + r.stderr, "the presigned URL's signature reached the output"

        # "After one byte of the object changes, the same verify fails with exit 5 (E_DECRYPT)."
        obj = bytearray(c.get_object(Bucket="models", Key="llama/model.safetensors.tseal")["Body"].read())
        obj[len(obj) - 40] ^= 1
        c.put_object(Bucket="models", Key="llama/model.safetensors.tseal", Body=bytes(obj))
        lines = script.split("\n")
        first = next(i for i, line in enumerate(lines) if line.startswith("url="))
        last = next(i for i, line in enumerate(lines) if line.startswith("tensorseal verify"))
        r = run_shell("\n".join(lines[first : last + 1]), work, env, drop=("AWS_", "TENSORSEAL_S3_"))
        assert r.returncode == 5, f"{r.returncode}: {r.stdout}{r.stderr}"
        assert "X-Amz-Signature" not in r.stdout + r.stderr
