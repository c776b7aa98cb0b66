"""Benchmark (not a test): loading a sealed model into torch and NumPy against the plaintext
safetensors library, and CryptoTensors and tensorizer when they are installed, all in the
same run.

One command: ``npm run bench:python`` (builds the CLI, runs this with the repository's .venv).
It writes a synthetic safetensors model (~512 MiB of F32/F16/I64 tensors), seals it with the
TypeScript CLI (``dist/cli/main.js``: keygen, then ``seal -r``), checks that tensorseal
loads exactly the plaintext, warms the page cache, then times each loader in a fresh process
(``python -c 'load...'``), the loaders alternating round after round; medians of ``--runs``
(>= 5). Each figure is printed next to its plaintext peer with the ratio.

tensorizer (CoreWeave, PyPI ``tensorizer``) gets the same tensors twice: encrypted with its own
encryption (``EncryptionParams.random()``: libsodium XSalsa20-Poly1305 over 2 MiB chunks, the
key held in the temporary directory only) and unencrypted, its own plaintext. It loads into CPU
torch tensors with ``TensorDeserializer(path, device="cpu", encryption=...)`` and its defaults:
``lazy_load=False`` (every tensor read, decrypted and copied into memory before the constructor
returns, as ``load_file`` does), ``num_readers=None`` (its own choice: 8 reader threads for a
local file, decryption on a pool of one thread per CPU, as tensorseal's own default),
``verify_hash=False`` (the per-chunk MACs already authenticate the encrypted tensor data; the
hashes are an extra pass). ``plaid_mode`` has no effect in 2.x, so it is not passed.

The children import tensorseal from a byte-compiled copy of the package in the temporary
directory, as pip installs it: the peers come from site-packages with their ``.pyc`` files,
while a source checkout under ``PYTHONDONTWRITEBYTECODE`` (or a read-only one) would compile
tensorseal's modules in every child, about 0.04 s of CPU measured here.

Usage: python python/bench/python_load.py [--size-mib 512] [--runs 5] [--threads N]
"""

from __future__ import annotations

import argparse
import base64
import compileall
import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
CLI = REPO / "dist" / "cli" / "main.js"

# Each loader runs alone in a fresh interpreter: imports first (not timed), then the load.
# {path} {keys} {threads} are filled in; the child prints seconds, CPU seconds (user + system,
# all its threads: less distorted than wall time when other work shares the CPUs), peak RSS and
# bytes loaded.
PRELUDE = """
import json, resource, sys, time
def cpu():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime
def clock():
    global c0
    c0 = cpu()
    return time.perf_counter()
def peak():
    for line in open('/proc/self/status'):
        if line.startswith('VmHWM:'): return int(line.split()[1]) * 1024
    return 0
def done(t0, out):
    dt, dc = time.perf_counter() - t0, cpu() - c0
    n = sum(v.nbytes if hasattr(v, 'nbytes') else v.numel() * v.element_size() for v in out.values())
    print(json.dumps({'seconds': dt, 'cpu': dc, 'rss': peak(), 'bytes': n}))
"""
LOADERS = {
    "plain-torch": "import torch\nfrom safetensors.torch import load_file\nt0 = clock()\ndone(t0, load_file({path!r}))",
    "plain-numpy": "from safetensors.numpy import load_file\nt0 = clock()\ndone(t0, load_file({path!r}))",
    "tseal-torch": (
        "import torch\nfrom tensorseal import read_identity_file\nfrom tensorseal.torch import load_file\n"
        "ids = read_identity_file({keys!r})\nt0 = clock()\ndone(t0, load_file({path!r}, identities=ids, threads={threads}))"
    ),
    "tseal-numpy": (
        "from tensorseal import read_identity_file\nfrom tensorseal.safetensors import load_file\n"
        "ids = read_identity_file({keys!r})\nt0 = clock()\ndone(t0, load_file({path!r}, identities=ids, threads={threads}))"
    ),
    "ctensors-torch": (
        "import torch, cryptotensors\nfrom cryptotensors.torch import load_file\n"
        "cryptotensors.register_direct_key_provider(files=[{keys!r}])\nt0 = clock()\ndone(t0, load_file({path!r}))"
    ),
    "ctensors-numpy": (
        "import cryptotensors\nfrom cryptotensors.numpy import load_file\n"
        "cryptotensors.register_direct_key_provider(files=[{keys!r}])\nt0 = clock()\ndone(t0, load_file({path!r}))"
    ),
    # lazy_load=False: the constructor reads (and decrypts) every tensor into memory, as load_file
    # does; dict() only collects the loaded tensors. The key file is read before the clock starts.
    "tensorizer-enc-torch": (
        "import torch\nfrom tensorizer import DecryptionParams, TensorDeserializer\n"
        "key = DecryptionParams.from_key(open({keys!r}, 'rb').read())\nt0 = clock()\n"
        "done(t0, dict(TensorDeserializer({path!r}, device='cpu', encryption=key, lazy_load=False)))"
    ),
    "tensorizer-plain-torch": (
        "import torch\nfrom tensorizer import TensorDeserializer\nt0 = clock()\n"
        "done(t0, dict(TensorDeserializer({path!r}, device='cpu', lazy_load=False)))"
    ),
}
PEER = {k: "plain-" + k.rsplit("-", 1)[1] for k in LOADERS}


def make_model(path: Path, size_mib: int) -> int:
    """A transformer-like mix: 16/8/4 MiB F32 and F16 matrices, small norms and an I64 index."""
    from safetensors.numpy import save_file

    rng = np.random.default_rng(0)
    tensors: dict[str, np.ndarray] = {}
    left, i = size_mib << 20, 0
    while left > 0:
        n = min(left, (16, 8, 4)[i % 3] << 20)
        dtype = np.float32 if i % 2 == 0 else np.float16
        rows = max(1, n // (1024 * np.dtype(dtype).itemsize))
        tensors[f"layers.{i}.weight"] = rng.standard_normal((rows, 1024), dtype=np.float32).astype(dtype, copy=False)
        tensors[f"layers.{i}.norm"] = rng.standard_normal(1024, dtype=np.float32)
        left -= rows * 1024 * np.dtype(dtype).itemsize
        i += 1
    tensors["position_ids"] = np.arange(4096, dtype=np.int64)
    save_file(tensors, str(path))
    return len(tensors)


def node() -> str:
    return os.environ.get("NODE", "node")


def seal_with_cli(plain: Path, sealed: Path, home: Path) -> tuple[Path, float]:
    if not CLI.exists():
        sys.exit(f"{CLI} is missing: build the CLI first (npx tsc -p tsconfig.json, or npm run bench:python)")
    env = {**os.environ, "TENSORSEAL_HOME": str(home)}
    home.mkdir(mode=0o700)
    ident = home / "id.txt"
    p = subprocess.run([node(), str(CLI), "keygen", "-o", str(ident)], env=env, capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit(f"tensorseal keygen failed: {p.stderr.strip()}")
    recipient = re.search(r"tseal1[0-9a-z]+", p.stdout + p.stderr)
    if recipient is None:
        sys.exit("keygen printed no recipient")
    t0 = time.perf_counter()
    p = subprocess.run([node(), str(CLI), "seal", str(plain), "-o", str(sealed), "-r", recipient.group(0)], env=env, capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit(f"tensorseal seal failed: {p.stderr.strip()}")
    return ident, time.perf_counter() - t0


def cryptotensors_copy(plain: Path, out: Path, keys: Path) -> str | None:
    """The same tensors as a CryptoTensors file (AES-256-GCM, Ed25519-signed header), or why not."""
    try:
        import cryptotensors
        from cryptotensors.numpy import save_file
    except ImportError:
        return "not installed (pip install cryptotensors)"
    from cryptography.hazmat.primitives import serialization as ser
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from safetensors.numpy import load_file

    b64 = lambda b: base64.b64encode(b).decode()  # noqa: E731
    sk = Ed25519PrivateKey.generate()
    d = sk.private_bytes(ser.Encoding.Raw, ser.PrivateFormat.Raw, ser.NoEncryption())
    x = sk.public_key().public_bytes(ser.Encoding.Raw, ser.PublicFormat.Raw)
    enc = {"kty": "oct", "alg": "aes256gcm", "kid": "bench-enc", "k": b64(os.urandom(32))}
    sign = {"kty": "okp", "alg": "ed25519", "kid": "bench-sign", "d": b64(d), "x": b64(x)}
    keys.write_text(json.dumps({"keys": [enc, sign]}))
    keys.chmod(0o600)
    cryptotensors.register_direct_key_provider(keys=[enc, sign])
    save_file(load_file(str(plain)), str(out), config={"enc_key": enc, "sign_key": sign})
    return None


def tensorizer_copies(plain: Path, enc: Path, clear: Path, key_file: Path) -> str | None:
    """The same tensors as two tensorizer files, one encrypted with its own encryption (a random
    key, written to ``key_file`` with mode 0600 and never printed) and one unencrypted; each is
    loaded back and compared with the plaintext, and the encrypted one must not load without
    its key. Returns why not, or None."""
    try:
        from tensorizer import CryptographyError, DecryptionParams, EncryptionParams, TensorDeserializer, TensorSerializer
    except ImportError:
        return "not installed (pip install tensorizer)"
    from safetensors.numpy import load_file as np_load
    from safetensors.torch import load_file

    try:
        params = EncryptionParams.random()
    except RuntimeError:  # tensorizer's answer when it finds no (recent enough) libsodium
        return "its encryption needs libsodium, not found (on Debian: apt-get install libsodium23)"
    fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(params.key)
    state = load_file(str(plain))
    for path, encryption in ((enc, params), (clear, None)):
        ser = TensorSerializer(str(path), encryption=encryption)
        ser.write_state_dict(state)
        ser.close()
    del state
    want = np_load(str(plain))
    for path, encryption in ((enc, DecryptionParams.from_key(params.key)), (clear, None)):
        got = TensorDeserializer(str(path), device="cpu", encryption=encryption)
        if set(want) != set(got) or any(want[k].tobytes() != got[k].detach().numpy().tobytes() for k in want):
            sys.exit(f"tensorizer did not load the plaintext it serialized ({path.name})")
        got.close()
    for encryption in (None, DecryptionParams.from_key(os.urandom(len(params.key)))):
        try:
            TensorDeserializer(str(enc), device="cpu", encryption=encryption).close()
        except CryptographyError:  # "encrypted, but decryption was not requested" / "decryption failed"
            continue
        sys.exit("tensorizer loaded its encrypted file without the right key")
    return None


def check_same(plain: Path, sealed: Path, ident: Path) -> None:
    from safetensors.numpy import load_file

    from tensorseal import read_identity_file
    from tensorseal.safetensors import load_file as ts_load

    want, got = load_file(str(plain)), ts_load(sealed, identities=read_identity_file(ident))
    if set(want) != set(got) or any(want[k].tobytes() != got[k].tobytes() for k in want):
        sys.exit("tensorseal did not load the plaintext it sealed")


def compiled_package(site: Path) -> dict[str, str]:
    """The environment of a child that imports tensorseal from a compiled copy in ``site``."""
    import tensorseal

    shutil.copytree(Path(tensorseal.__file__).parent, site / "tensorseal", ignore=shutil.ignore_patterns("__pycache__"))
    if not compileall.compile_dir(str(site), quiet=1):
        sys.exit("could not byte-compile tensorseal for the children")
    return {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")]))}


def run_child(kind: str, path: Path, keys: Path | None, threads: str, env: dict[str, str]) -> dict[str, float]:
    code = PRELUDE + LOADERS[kind].format(path=str(path), keys=str(keys), threads=threads)
    c0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    wall = time.perf_counter() - t0
    c1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    if p.returncode != 0:
        sys.exit(f"{kind} failed:\n{p.stderr[-2000:]}")
    r = json.loads(p.stdout.strip().splitlines()[-1])
    r["wall"] = wall
    r["proc_cpu"] = c1.ru_utime + c1.ru_stime - c0.ru_utime - c0.ru_stime
    return r


def warm(*paths: Path) -> None:
    for p in paths:
        with open(p, "rb") as f:
            while f.read(64 << 20):
                pass


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size-mib", type=int, default=512)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--threads", default="None", help="tensorseal decryption threads (default: its own)")
    args = ap.parse_args()
    if args.runs < 1:
        sys.exit("--runs must be >= 1")
    import cryptography
    import safetensors

    import tensorseal

    from tensorseal.chunk_pool import default_threads

    with tempfile.TemporaryDirectory(dir=os.environ.get("TMPDIR")) as tmp:
        d = Path(tmp)
        plain, sealed, ct, ct_keys = d / "model.safetensors", d / "model.tseal", d / "model.ct.safetensors", d / "ct-keys.json"
        count = make_model(plain, args.size_mib)
        ident, seal_s = seal_with_cli(plain, sealed, d / "home")
        check_same(plain, sealed, ident)
        why_no_ct = cryptotensors_copy(plain, ct, ct_keys)
        tz_enc, tz_plain, tz_key = d / "model.enc.tensors", d / "model.tensors", d / "tensorizer.key"
        why_no_tz = tensorizer_copies(plain, tz_enc, tz_plain, tz_key)
        files = {
            "plain": (plain, None),
            "tseal": (sealed, ident),
            "ctensors": (ct, ct_keys),
            "tensorizer-enc": (tz_enc, tz_key),
            "tensorizer-plain": (tz_plain, None),
        }
        skip = [p for p, why in (("ctensors", why_no_ct), ("tensorizer", why_no_tz)) if why]
        kinds = [k for k in LOADERS if not any(k.startswith(p) for p in skip)]
        env = compiled_package(d / "site")
        warm(*(p for p, _ in files.values() if p.exists()))
        load0 = os.getloadavg()
        results: dict[str, list[dict[str, float]]] = {k: [] for k in kinds}
        for r in range(args.runs):
            for kind in kinds[r % len(kinds) :] + kinds[: r % len(kinds)]:  # rotate who goes first
                path, keys = files[kind.rsplit("-", 1)[0]]
                results[kind].append(run_child(kind, path, keys, args.threads, env))
        load1 = os.getloadavg()
        size = plain.stat().st_size

    try:
        import torch

        torch_v = torch.__version__
    except ImportError:  # pragma: no cover
        torch_v = "missing"
    ct_v = "-" if why_no_ct else __import__("cryptotensors").__version__
    tz_v = "-" if why_no_tz else __import__("tensorizer").__version__
    threads = default_threads() if args.threads == "None" else int(args.threads)
    print(f"model: {size / 2**20:.0f} MiB safetensors, {count} tensors (F32/F16/I64); sealed by the TS CLI in {seal_s:.2f} s (1 MiB chunks)")
    print(f"python {sys.version.split()[0]}, torch {torch_v}, safetensors {safetensors.__version__}, cryptography {cryptography.__version__}, "
          f"cryptotensors {ct_v}, tensorizer {tz_v}; {os.cpu_count()} CPUs, tensorseal threads {threads}; load average {load0[0]:.1f} before, {load1[0]:.1f} after")  # fmt: skip
    print(f"tensorseal from {Path(tensorseal.__file__).parent} (children: a byte-compiled copy)")
    if why_no_ct:
        print(f"CryptoTensors peer skipped: {why_no_ct}")
    if why_no_tz:
        print(f"tensorizer peers skipped: {why_no_tz}")
    print(f"each loader in a fresh process, alternating, median of {args.runs} (min); ratio = median / median of the plaintext")
    print("loader of the same framework; 'process' is the whole `python -c` run (interpreter, imports, load, exit)")
    print("'CPU' is user + system seconds of the load (in the child) and of the whole child (by the parent)")
    print(f"{'loader':<22} {'load s':>8} {'(min)':>8} {'GiB/s':>6} {'ratio':>6} {'CPU s':>6} {'process s':>9} {'ratio':>6} {'CPU s':>6} {'peak RSS/model':>14}")  # fmt: skip
    med = {k: statistics.median(x["seconds"] for x in v) for k, v in results.items()}
    proc = {k: statistics.median(x["wall"] for x in v) for k, v in results.items()}
    cpu = {k: statistics.median(x["cpu"] for x in v) for k, v in results.items()}
    pcpu = {k: statistics.median(x["proc_cpu"] for x in v) for k, v in results.items()}
    for kind, runs in results.items():
        m, lo, peer = med[kind], min(x["seconds"] for x in runs), PEER[kind]
        rss = max(x["rss"] for x in runs) / size
        print(f"{kind:<22} {m:8.3f} {lo:8.3f} {size / 2**30 / m:6.2f} {m / med[peer]:5.2f}x {cpu[kind]:6.2f} {proc[kind]:9.3f} {proc[kind] / proc[peer]:5.2f}x {pcpu[kind]:6.2f} {rss:13.2f}x")  # fmt: skip
    for fw in ("torch", "numpy"):
        if f"ctensors-{fw}" in med:
            t, c = f"tseal-{fw}", f"ctensors-{fw}"
            print(f"tensorseal / CryptoTensors, {fw}: load {med[t] / med[c]:.2f}x, process {proc[t] / proc[c]:.2f}x")
    for z, what in (("tensorizer-enc-torch", "tensorizer encrypted"), ("tensorizer-plain-torch", "tensorizer plaintext")):
        if z in med:
            t = "tseal-torch"
            print(f"tensorseal / {what}, torch: load {med[t] / med[z]:.2f}x (CPU {cpu[t] / cpu[z]:.2f}x), process {proc[t] / proc[z]:.2f}x (CPU {pcpu[t] / pcpu[z]:.2f}x)")  # fmt: skip
    if "tensorizer-enc-torch" in med:
        print("(below 1 = tensorseal faster)")
    print("plain-torch maps the file and reads no tensor byte during load_file (pages come in on first")
    print("use); the sealed loaders decrypt every byte into memory before returning.")


if __name__ == "__main__":
    main()
