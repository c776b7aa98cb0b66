"""The signed-provenance example of docs/INTEGRATIONS.md ("Signed model directories") runs as
written: its shell block with `tensorseal` (this build's dist/ CLI) and the OpenSSF
`model_signing` tool (.venv-model-signing, scripts/setup-test-deps.sh) on PATH, then its Python
block. Missing the tool skips, except under TENSORSEAL_REQUIRE_ALL=1 (CI), where it fails."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest

from helpers import REPO, node, require_cli
from moto_s3 import missing
from test_hf_provenance import key_pair, make_model

DOC, HEADING = "docs/INTEGRATIONS.md", "Signed model directories"
TOOL = REPO / ".venv-model-signing" / "bin" / "model_signing"


def block(lang: str) -> str:
    text = (REPO / DOC).read_text(encoding="utf-8")
    section = re.search(rf"^#+ {re.escape(HEADING)}\n(.*?)(?=^#+ )", text, flags=re.S | re.M)
    assert section is not None, f"{DOC} has no section {HEADING!r} any more"
    m = re.search(rf"^```{lang}\n(.*?)^```$", section.group(1), flags=re.S | re.M)
    assert m is not None, f"{DOC} has no {lang} block under {HEADING!r} any more"
    return m.group(1)


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    if not TOOL.exists():
        missing(f"{TOOL} is missing (run scripts/setup-test-deps.sh)")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "tensorseal").write_text(f'#!/bin/sh\nexec "{node()}" "{require_cli()}" "$@"\n')
    (bin_dir / "tensorseal").chmod(0o755)
    (bin_dir / "model_signing").symlink_to(TOOL)
    key_pair(tmp_path, "producer")
    return tmp_path


def run_shell(script: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PATH": f"{cwd / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}", "TENSORSEAL_HOME": str(cwd / "home")}
    return subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=300, stdin=subprocess.DEVNULL)  # fmt: skip


def test_the_signed_provenance_example_runs_as_written(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tensors = make_model(workdir / "gpt2", 7)
    r = run_shell(block("sh"), workdir)
    assert r.returncode == 0, f"the example failed ({r.returncode}):\n{r.stdout}\n{r.stderr}"
    assert (workdir / "gpt2.sealed" / "model.sig").is_file()
    for f in (workdir / "gpt2").iterdir():
        assert (workdir / "gpt2.opened" / f.name).read_bytes() == f.read_bytes()
    monkeypatch.chdir(workdir)
    ns: dict[str, object] = {}
    exec(compile(block("python"), DOC, "exec"), ns)  # noqa: S102 - the docs' own example
    weights = ns["weights"]
    assert isinstance(weights, dict) and sorted(weights) == sorted(tensors)
    assert all(np.array_equal(weights[k], v) for k, v in tensors.items())


def test_the_example_refuses_a_model_signed_by_someone_else(workdir: Path) -> None:
    """The same commands fail once the producer key is not the one that signed: the example's
    checks are real, not decoration."""
    make_model(workdir / "gpt2", 8)
    key_pair(workdir, "mallory")
    script = block("sh").replace("--sign producer.pem", "--sign mallory.pem")
    r = run_shell(script, workdir)
    assert r.returncode != 0
    assert "the model was signed by another key than --require-signer names" in r.stderr, r.stderr
    assert not (workdir / "gpt2.opened").exists()
