"""Benchmark (not a test): loading a ~1 GiB safetensors model, plaintext with the safetensors
library vs sealed with tensorseal, in the same run with a warm page cache.

Prints both times and their ratio (goal <= 1.5x), each loader's peak RSS against the model
size (goal <= 1.1x, measured in a fresh subprocess per loader), and the bytes decrypted to
load one tensor lazily. Usage: python python/bench/load_bench.py [--size-mib 1024] [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

KEK = bytes(range(32))


def make_model(path: Path, size_mib: int) -> dict[str, tuple[int, ...]]:
    from safetensors.numpy import save_file

    per = 32 << 20  # 32 MiB tensors, plus a few small ones
    rng = np.random.default_rng(0)
    tensors = {f"layer.{i}.weight": rng.standard_normal(per // 4, dtype=np.float32).reshape(-1, 1024) for i in range(size_mib // 32)}
    tensors["norm.bias"] = rng.standard_normal(4096, dtype=np.float32)
    save_file(tensors, str(path))
    return {k: v.shape for k, v in tensors.items()}


def child(kind: str, path: str) -> None:
    """Runs in a subprocess: one load, prints seconds and peak RSS."""
    if kind == "plain":
        from safetensors.numpy import load_file

        t0 = time.perf_counter()
        out = load_file(path)
    else:
        from tensorseal import KekIdentity
        from tensorseal.safetensors import load_file as ts_load

        ident = KekIdentity.single("bench", 1, KEK)
        t0 = time.perf_counter()
        out = ts_load(path, identities=[ident])
    dt = time.perf_counter() - t0
    nbytes = sum(a.nbytes for a in out.values())
    print(json.dumps({"seconds": dt, "rss": peak_rss(), "bytes": nbytes}))


def peak_rss() -> int:
    """This process's peak RSS. /proc's VmHWM is per address space; ru_maxrss would carry the
    parent's high-water mark across the vfork+exec that subprocess uses."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def run_child(kind: str, path: Path) -> dict[str, float]:
    p = subprocess.run([sys.executable, __file__, "--child", kind, str(path)], capture_output=True, text=True, check=True)
    return json.loads(p.stdout.strip().splitlines()[-1])


def baseline_rss() -> int:
    code = "import sys; sys.path.insert(0, sys.argv[1]); import load_bench, tensorseal.safetensors, safetensors.numpy; print(load_bench.peak_rss())"
    here = str(Path(__file__).resolve().parent)
    return int(subprocess.run([sys.executable, "-c", code, here], capture_output=True, text=True, check=True).stdout)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size-mib", type=int, default=1024)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--child", nargs=2)
    args = ap.parse_args()
    if args.child:
        child(*args.child)
        return

    from tensorseal import KekIdentity, KekRecipient, seal_file
    from tensorseal.safetensors import safe_open

    with tempfile.TemporaryDirectory(dir=os.environ.get("TMPDIR")) as d:
        plain, sealed = Path(d) / "model.safetensors", Path(d) / "model.tseal"
        shapes = make_model(plain, args.size_mib)
        t0 = time.perf_counter()
        seal_file(plain, sealed, [KekRecipient("bench", 1, KEK)])
        seal_s = time.perf_counter() - t0
        size = plain.stat().st_size
        for p in (plain, sealed):  # warm the page cache
            with open(p, "rb") as f:
                while f.read(64 << 20):
                    pass
        results: dict[str, list[dict[str, float]]] = {"plain": [], "sealed": []}
        for _ in range(args.runs):
            for kind, p in (("plain", plain), ("sealed", sealed)):
                results[kind].append(run_child(kind, p))
        t_plain = statistics.median(r["seconds"] for r in results["plain"])
        t_sealed = statistics.median(r["seconds"] for r in results["sealed"])
        base = baseline_rss()
        rss_plain = max(r["rss"] for r in results["plain"])
        rss_sealed = max(r["rss"] for r in results["sealed"])
        with safe_open(sealed, identities=[KekIdentity.single("bench", 1, KEK)]) as f:
            before = f.decrypted_bytes
            name = "layer.3.weight"
            t = f.get_tensor(name)
            one = f.decrypted_bytes - before

    gib = size / 2**30
    print(f"model: {size / 2**20:.0f} MiB safetensors, {len(shapes)} tensors, float32; 1 MiB chunks; sealed in {seal_s:.2f} s")
    print(f"load plaintext (safetensors.numpy.load_file): {t_plain:.3f} s ({gib / t_plain:.2f} GiB/s), median of {args.runs}")
    print(f"load sealed    (tensorseal.safetensors.load_file): {t_sealed:.3f} s ({gib / t_sealed:.2f} GiB/s), median of {args.runs}")
    print(f"ratio sealed/plaintext: {t_sealed / t_plain:.2f}x (goal <= 1.5x)")
    print(f"peak RSS: plaintext {rss_plain / 2**20:.0f} MiB, sealed {rss_sealed / 2**20:.0f} MiB, model {size / 2**20:.0f} MiB, interpreter+imports {base / 2**20:.0f} MiB")
    print(f"peak RSS / model: plaintext {rss_plain / size:.2f}x, sealed {rss_sealed / size:.2f}x, sealed minus imports {(rss_sealed - base) / size:.2f}x (goal <= 1.1x)")
    print(f"lazy get_tensor({name!r}): {t.nbytes / 2**20:.0f} MiB tensor, {one / 2**20:.2f} MiB decrypted ({one / t.nbytes:.3f}x)")


if __name__ == "__main__":
    main()
