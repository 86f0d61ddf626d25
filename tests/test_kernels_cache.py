"""Numba cache of the kernels: many processes starting together on a cold cache, then warm."""

import importlib.util
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from mpigc.kernels import _compile, loss_grad

# Each process touches every layout, starting from a different one, and checks its
# results against NumPy; it prints how many specialisations it compiled itself.
_WORKER = """
import sys
import numpy as np, scipy.sparse as sp
from mpigc import kernels
from mpigc.kernels._compile import SPECIALISATIONS

shift = int(sys.argv[1])
rng = np.random.default_rng(shift)
X64 = rng.standard_normal((30, 6)); y = rng.standard_normal(30); w = rng.standard_normal(6)
csr = sp.csr_matrix(X64 * (rng.random((30, 6)) < 0.4))
def csr_as(dt, it):
    m = csr.astype(dt); m.indices = m.indices.astype(it); m.indptr = m.indptr.astype(it)
    return m
mats = [X64, X64.astype(np.float32)] + [csr_as(dt, it) for dt in ("float64", "float32")
                                       for it in ("int32", "int64")]
for k in range(len(mats)):
    X = mats[(k + shift) % len(mats)]
    for model in ("linear", "logistic"):
        dense = X.toarray() if sp.issparse(X) else X
        g = np.zeros(6)
        loss = kernels.loss_grad(model, X, y, w, 0, 30, g)
        z = dense.astype(np.float64) @ w
        r = z - y if model == "linear" else -y / (1 + np.exp(y * z))
        ref = 0.5 * (z - y) @ (z - y) if model == "linear" else np.log1p(np.exp(-y * z)).sum()
        assert abs(loss - ref) <= 1e-10 * abs(ref), (model, loss, ref)
        assert np.allclose(g, dense.T.astype(np.float64) @ r, rtol=1e-10, atol=0)
dispatchers = {d for d, _ in SPECIALISATIONS.values()}
print("compiled", sum(sum(d.stats.cache_misses.values()) for d in dispatchers))
"""


def _env(cache):
    env = dict(os.environ, NUMBA_CACHE_DIR=str(cache))
    env.pop("NUMBA_DISABLE_JIT", None)
    return env


# A hang (the cache lock never released) shows as no progress: no cache file written and
# no process finished for STALL_S, far more than one compile takes even on a loaded
# machine (a few seconds idle). The total time is not bounded by a guess: it grows with the
# load (the six compiles are serialised by the lock). pytest's timeout is the backstop.
STALL_S = 150


def _wait_while_progressing(procs, cache):
    """Wait for every process, failing when none finishes and the cache does not grow
    for STALL_S seconds; returns the seconds waited."""
    start = last_change = time.monotonic()
    seen = None
    while any(p.poll() is None for p in procs):
        now_seen = (sum(p.poll() is not None for p in procs),
                    len(list(cache.rglob("*"))) if cache.exists() else 0)
        if now_seen != seen:
            seen, last_change = now_seen, time.monotonic()
        assert time.monotonic() - last_change < STALL_S, \
            f"no progress for {STALL_S} s (finished, cache files) = {seen}"
        time.sleep(0.2)
    return time.monotonic() - start


@pytest.mark.timeout(900)
def test_concurrent_cold_start_then_warm(tmp_path):
    cache = tmp_path / "numba_cache"
    procs = []
    try:
        for i in range(4):
            # files, not pipes: a full pipe would block a process that nobody reads yet
            with open(tmp_path / f"out{i}", "w") as out, open(tmp_path / f"err{i}", "w") as err:
                procs.append(subprocess.Popen([sys.executable, "-c", _WORKER, str(i)],
                                              env=_env(cache), stdout=out, stderr=err))
        cold_s = _wait_while_progressing(procs, cache)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    for i, p in enumerate(procs):
        assert p.returncode == 0, (tmp_path / f"err{i}").read_text()
    outputs = [(tmp_path / f"out{i}").read_text() for i in range(4)]
    compiled = [int(out.split()[-1]) for out in outputs]
    # the lock makes each specialisation compile exactly once among the four processes
    assert sum(compiled) == 6, compiled

    # warm: `mpigc warmup` compiles nothing and says where the cache is
    # it only loads what the cold start compiled: it takes less than that start did, on a
    # machine as loaded. Without a C compiler (CC fails) it builds no ahead-of-time module
    # and says so in a line; mpigc's bytecode is written all the same.
    env = dict(_env(cache), CC="/bin/false", PYTHONDONTWRITEBYTECODE="1")
    pyc = Path(importlib.util.cache_from_source(_compile.__file__))
    pyc.unlink(missing_ok=True)
    run = subprocess.run([sys.executable, "-m", "mpigc", "warmup"], env=env,
                         capture_output=True, text=True, timeout=max(120, 2 * cold_s))
    assert run.returncode == 0, run.stderr
    assert "(0 compiled)" in run.stdout and str(cache) in run.stdout
    assert "no ahead-of-time module: no working C compiler" in run.stdout, run.stdout
    assert not list(Path(cache).rglob("*.tmp.*")) and not list(Path(cache).rglob("mpigc_aot*"))
    assert pyc.exists()


def test_file_system_without_flock(monkeypatch):
    """Where flock is refused (e.g. Lustre without -o flock) the kernels still load."""
    def refuse(*args):
        raise OSError(38, "Function not implemented")

    monkeypatch.setattr(_compile.fcntl, "flock", refuse)
    _compile.compile_keys([("dense", "float64")])
    grad = np.zeros(2)
    X = np.array([[1.0, 2.0]])
    assert loss_grad("linear", X, np.zeros(1), np.ones(2), 0, 1, grad) == 4.5
    assert np.all(grad == [3.0, 6.0])
