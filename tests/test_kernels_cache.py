"""Numba cache of the kernels: many processes starting together on a cold cache, then warm."""

import os
import subprocess
import sys
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


@pytest.mark.timeout(180)
def test_concurrent_cold_start_then_warm(tmp_path):
    cache = tmp_path / "numba_cache"
    procs = [subprocess.Popen([sys.executable, "-c", _WORKER, str(i)], env=_env(cache),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for i in range(4)]
    outputs = []
    try:
        for p in procs:
            out, err = p.communicate(timeout=150)
            assert p.returncode == 0, err
            outputs.append(out)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    compiled = [int(out.split()[-1]) for out in outputs]
    # the lock makes each specialisation compile exactly once among the four processes
    assert sum(compiled) == 6, compiled

    # warm: `mpigc warmup` compiles nothing and says where the cache is
    run = subprocess.run([sys.executable, "-m", "mpigc", "warmup"], env=_env(cache),
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert "(0 compiled)" in run.stdout and str(cache) in run.stdout
    assert not list(Path(cache).rglob("*.tmp.*"))


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
