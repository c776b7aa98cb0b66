"""The ```python blocks of the repository's README.md run as written.

The README's shell blocks (run by test/docs/readme.test.ts) seal model.safetensors with the
CLI and add a partner's X25519 identity, partner.id, to it; the Python block then opens it as
that partner. This test makes the same two files with the built CLI, the same way, and runs each
block in that directory. Needs Node.js and the built CLI, like the cross-language tests.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save_file as save_plain

from helpers import REPO, run_cli


def python_blocks() -> list[tuple[int, str]]:
    """(line of the opening fence, code) of every ```python block of README.md."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    out = []
    for m in re.finditer(r"^```python\n(.*?)^```$", text, flags=re.S | re.M):
        out.append((text.count("\n", 0, m.start()) + 1, m.group(1)))
    return out


BLOCKS = python_blocks()


def test_readme_has_python_blocks() -> None:
    assert BLOCKS, "README.md has no ```python block any more"


@pytest.mark.parametrize(("line", "code"), BLOCKS, ids=[f"README.md:{n}" for n, _ in BLOCKS])
def test_readme_python_block_runs(line: int, code: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    weights = np.arange(4, dtype=np.float32).reshape(2, 2)
    save_plain({"lm_head.weight": weights}, str(tmp_path / "model.safetensors"))
    root = tmp_path / "root.hex"
    root.write_text(os.urandom(32).hex() + "\n")
    env = {"TENSORSEAL_HOME": str(tmp_path / "home"), "TENSORSEAL_ROOT_KEY_FILE": str(root)}
    # As the README's shell block: a keystore, a sealed model, a partner added to it.
    run_cli(["init"], env)
    run_cli(["seal", str(tmp_path / "model.safetensors"), "-c", "tenant=acme"], env)
    run_cli(["keygen", "-o", str(tmp_path / "partner.id")], env)
    recipient = re.search(r"^# recipient: (tseal1\S+)$", (tmp_path / "partner.id").read_text(), re.M)
    assert recipient is not None
    run_cli(["rewrap", str(tmp_path / "model.safetensors.tseal"), "--add-recipient", recipient.group(1)], env)

    # The partner: no keystore, only partner.id, in the directory the README's commands ran in.
    monkeypatch.chdir(tmp_path)
    for var in [v for v in os.environ if v.startswith("TENSORSEAL_")]:
        monkeypatch.delenv(var)
    namespace: dict[str, object] = {}
    exec(compile(code, f"README.md:{line}", "exec"), namespace)  # noqa: S102 - the README's own example
    tensors = namespace["tensors"]
    assert isinstance(tensors, dict)
    assert np.array_equal(tensors["lm_head.weight"], weights)
