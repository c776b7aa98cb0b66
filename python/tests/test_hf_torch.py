"""tensorseal.hf.load_state_dict and from_pretrained: a tiny GPT-2 saved with save_pretrained in
two shards, sealed with the TS CLI's seal-dir, loaded back in memory: the same logits, tied
weights intact, and no plaintext file anywhere.

Skipped without torch / transformers unless TENSORSEAL_REQUIRE_ALL=1 (scripts/test-python.sh
installs both, from local wheels, with TENSORSEAL_WITH_TORCH=1). Needs the built CLI.
"""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import tempfile
from pathlib import Path

import pytest

if os.environ.get("TENSORSEAL_REQUIRE_ALL") == "1":
    import torch  # a missing torch or transformers must fail the run
    import transformers
else:
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")

from helpers import REPO, run_cli
from tensorseal import TensorSealError, X25519Identity, generate_identity
from tensorseal.keys.x25519 import format_identity_file
from tensorseal.hf import from_pretrained, load_state_dict, open_model_dir

SECRET, PUBLIC = generate_identity()
IDS = [X25519Identity(SECRET)]
MARKER = os.urandom(8).hex()  # in the config: found in no file once the plaintext is gone
INPUT = [[5, 17, 42, 99, 0, 63, 8]]


def tiny_gpt2(seed: int) -> "transformers.GPT2LMHeadModel":
    torch.manual_seed(seed)
    config = transformers.GPT2Config(n_layer=2, n_embd=32, n_head=4, vocab_size=100, n_positions=64,
                                     bos_token_id=0, eos_token_id=0, tensorseal_marker=MARKER)  # fmt: skip
    return transformers.GPT2LMHeadModel(config).eval()


def save_and_seal(model: "transformers.GPT2LMHeadModel", root: Path, name: str) -> Path:
    plain = root / f"{name}.plain"
    model.save_pretrained(plain, max_shard_size="60KB")
    assert (plain / "model.safetensors.index.json").exists(), "the test needs a sharded model"
    from tokenizers import Tokenizer, models, pre_tokenizers

    tok = Tokenizer(models.WordLevel({"[UNK]": 0, "sealed": 1, "weights": 2}, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.save(str(plain / "tokenizer.json"))
    sealed = root / f"{name}.sealed"
    run_cli(["seal-dir", str(plain), "-o", str(sealed), "-r", PUBLIC], {"TENSORSEAL_HOME": str(root / "home")})
    return sealed


@pytest.fixture(scope="module")
def sealed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    root = tmp_path_factory.mktemp("hf-torch")
    a, b = tiny_gpt2(1), tiny_gpt2(2)
    out = {"root": root, "model": a, "a": save_and_seal(a, root, "tiny-gpt2"), "b": save_and_seal(b, root, "b")}
    # The markers the no-plaintext test looks for are in the plaintext files; then only the
    # sealed directories stay.
    plain = root / "tiny-gpt2.plain"
    assert files_holding(plain, MARKER.encode()) and files_holding(plain, weight_bytes(a))
    for name in ("tiny-gpt2", "b"):
        shutil.rmtree(root / f"{name}.plain")
    return out


def weight_bytes(model: "transformers.GPT2LMHeadModel") -> bytes:
    return model.transformer.h[1].mlp.c_fc.weight.detach().numpy().tobytes()[:64]


def logits(model: "transformers.PreTrainedModel") -> "torch.Tensor":
    with torch.no_grad():
        return model(torch.tensor(INPUT)).logits


def files_holding(root: Path, needle: bytes) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and not p.is_symlink() and needle in p.read_bytes()]


def test_state_dict_is_the_models_own(sealed) -> None:  # type: ignore[no-untyped-def]
    state = load_state_dict(sealed["a"], identities=IDS)
    want = sealed["model"].state_dict()
    assert "lm_head.weight" not in state  # tied: save_pretrained stores the embedding only
    assert set(state) == {k for k in want if k != "lm_head.weight"}
    assert all(torch.equal(state[k], want[k]) for k in state)
    half = load_state_dict(sealed["a"], identities=IDS, dtype=torch.float16)
    assert half["transformer.wte.weight"].dtype == torch.float16
    assert torch.equal(half["transformer.wte.weight"], want["transformer.wte.weight"].half())


@pytest.mark.parametrize("cls", ["GPT2LMHeadModel", "AutoModelForCausalLM"])
def test_from_pretrained_gives_the_same_logits_and_tied_weights(sealed, cls: str) -> None:  # type: ignore[no-untyped-def]
    model = from_pretrained(getattr(transformers, cls), sealed["a"], identities=IDS)
    assert type(model).__name__ == "GPT2LMHeadModel" and not model.training
    assert model.lm_head.weight.data_ptr() == model.transformer.wte.weight.data_ptr()
    assert model.config.tensorseal_marker == MARKER
    assert torch.equal(logits(model), logits(sealed["model"]))


def test_from_pretrained_with_dtype(sealed) -> None:  # type: ignore[no-untyped-def]
    model = from_pretrained(transformers.AutoModelForCausalLM, sealed["a"], identities=IDS, dtype=torch.bfloat16)
    assert model.transformer.h[0].attn.c_attn.weight.dtype == torch.bfloat16
    assert model.lm_head.weight.data_ptr() == model.transformer.wte.weight.data_ptr()
    assert torch.equal(logits(model), logits(copy.deepcopy(sealed["model"]).to(torch.bfloat16)))


def test_no_plaintext_file_appears_while_loading(sealed, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    # Temporary files and the Hugging Face cache go under tmp_path for this test; the marker is
    # in config.json, the weight bytes in the shards: neither may be in any file afterwards.
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    monkeypatch.setenv("TMPDIR", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    monkeypatch.setattr(tempfile, "tempdir", None)
    model = from_pretrained(transformers.AutoModelForCausalLM, sealed["a"], identities=IDS)
    assert torch.equal(logits(model), logits(sealed["model"]))
    weights = weight_bytes(sealed["model"])
    for root in (tmp_path, sealed["root"], Path(tempfile.gettempdir())):
        assert files_holding(root, MARKER.encode()) == []
        assert files_holding(root, weights) == []
    assert json.dumps(model.config.to_dict()).count(MARKER) == 1  # the marker did come through


def test_shard_from_another_model_is_refused_by_every_loader(sealed, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    a = tmp_path / "a"
    shutil.copytree(sealed["a"], a)
    shard = next(p.name for p in a.iterdir() if p.name.startswith("model-00002"))
    shutil.copyfile(sealed["b"] / shard, a / shard)
    for load in (
        lambda: load_state_dict(a, identities=IDS),
        lambda: from_pretrained(transformers.AutoModelForCausalLM, a, identities=IDS),
        lambda: open_model_dir(a, identities=IDS),
    ):
        with pytest.raises(TensorSealError) as e:
            load()
        assert e.value.code == "E_DECRYPT" and e.value.file == str(a / shard)


def test_index_that_disagrees_with_the_shards_is_refused(sealed, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    # Re-seal a model whose index moves one tensor to the other shard: consistent manifest,
    # inconsistent index.
    plain = tmp_path / "plain"
    tiny_gpt2(3).save_pretrained(plain, max_shard_size="60KB")
    index = json.loads((plain / "model.safetensors.index.json").read_text())
    name, shard = next(iter(index["weight_map"].items()))
    other = next(s for s in set(index["weight_map"].values()) if s != shard)
    index["weight_map"][name] = other
    (plain / "model.safetensors.index.json").write_text(json.dumps(index))
    run_cli(["seal-dir", str(plain), "-o", str(tmp_path / "s"), "-r", PUBLIC], {"TENSORSEAL_HOME": str(tmp_path / "h")})
    with pytest.raises(TensorSealError) as e:
        load_state_dict(tmp_path / "s", identities=IDS)
    assert e.value.code == "E_MALFORMED" and "disagree" in e.value.message


@pytest.mark.parametrize("kwargs", [{"offload_folder": "/tmp/x"}, {"device_map": {"": "disk"}}, {"trust_remote_code": True}])
def test_options_that_would_touch_the_disk_are_refused(sealed, kwargs: dict) -> None:  # type: ignore[no-untyped-def,type-arg]
    with pytest.raises(TensorSealError) as e:
        from_pretrained(transformers.AutoModelForCausalLM, sealed["a"], identities=IDS, **kwargs)
    assert e.value.code == "E_USAGE"


def doc_block(doc: str, heading: str) -> str:
    """The first ```python block under ``heading`` in ``doc``."""
    text = (REPO / doc).read_text(encoding="utf-8")
    m = re.search(rf"^#+ {re.escape(heading)}\n.*?^```python\n(.*?)^```$", text, flags=re.S | re.M)
    assert m is not None, f"{doc} has no python block under {heading!r} any more"
    return m.group(1)


@pytest.mark.parametrize(("doc", "heading"), [("docs/INTEGRATIONS.md", "Python: in process"),
                                              ("python/README.md", "Sealed model directories (Hugging Face)")])  # fmt: skip
def test_the_docs_example_runs_as_written(sealed, doc: str, heading: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    shutil.copytree(sealed["a"], tmp_path / "tiny-gpt2.sealed")
    (tmp_path / "partner.id").write_text(format_identity_file(SECRET))
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {}
    exec(compile(doc_block(doc, heading), doc, "exec"), namespace)  # noqa: S102 - the docs' own example
    assert torch.equal(logits(namespace["model"]), logits(sealed["model"]))
    assert namespace["config"]["tensorseal_marker"] == MARKER
    assert namespace["tokenizer"].encode("sealed weights").ids == [1, 2]
    state = sealed["model"].state_dict()
    assert all(torch.equal(t, state[k]) for k, t in namespace["tensors"].items()) and namespace["tensors"]
    assert all(torch.equal(t, state[k]) for k, t in namespace["state"].items())
