"""The layout rules of CONTRIBUTING.md that can be measured, read from the source with ast."""

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MAX_BODY = 60          # lines of a function's body, its docstring left out


def _sources(*roots):
    for root in roots:
        for path in sorted((ROOT / root).rglob("*.py")):
            rel = path.relative_to(ROOT).as_posix()
            if not rel.startswith("mpigc/kernels/"):    # the symlink to kernels/
                yield rel, ast.parse(path.read_text(), filename=rel)


def _body_lines(fn):
    body = fn.body
    if (len(body) > 1 and isinstance(body[0], ast.Expr)
            and isinstance(body[0].value, ast.Constant) and isinstance(body[0].value.value, str)):
        body = body[1:]
    return fn.end_lineno - body[0].lineno + 1


def _imports(tree):
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            yield node.module


def test_no_function_body_is_longer_than_60_lines():
    long = {(rel, node.name): _body_lines(node)
            for rel, tree in _sources("mpigc", "kernels") for node in ast.walk(tree)
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
            and _body_lines(node) > MAX_BODY}
    assert not long, long


def test_train_module_is_under_300_lines():
    lines = (ROOT / "mpigc/runtime/train.py").read_text().count("\n")
    assert lines < 300, lines


def test_only_the_comm_layer_imports_mpi4py():
    importers = {rel for rel, tree in _sources("mpigc", "kernels")
                 if any(m.split(".")[0] == "mpi4py" for m in _imports(tree))}
    assert importers == {"mpigc/runtime/comm.py"}


def test_config_imports_nothing_from_the_runtime():
    tree = ast.parse((ROOT / "mpigc/config.py").read_text())
    assert not [m for m in _imports(tree) if m.startswith("mpigc.runtime")]
    # nor through the modules it imports
    loaded = subprocess.run([sys.executable, "-c", "import sys, mpigc.config; "
                             "print(' '.join(m for m in sys.modules if m.startswith("
                             "('mpigc.runtime', 'mpi4py'))))"],
                            capture_output=True, text=True, check=True, timeout=120).stdout
    assert loaded.split() == []


def test_a_gd_run_imports_no_scipy_it_does_not_use():
    # every rank imports these before its first iteration (issue 16: 2 s of start-up);
    # scipy.optimize is lbfgs's, scipy.stats the held-out AUC's, csgraph a random assignment's
    heavy = ("scipy.optimize", "scipy.stats", "scipy.sparse.csgraph", "scipy.sparse.linalg")
    code = ("import sys, mpigc.cli, mpigc.runtime.train, mpigc.runtime.worker, "
            f"mpigc.runtime.ps; print(' '.join(m for m in sys.modules if m in {heavy!r}))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True, timeout=120).stdout
    assert loaded.split() == []


def test_no_test_module_imports_another():
    tests = {p.stem for p in (ROOT / "tests").rglob("test_*.py")}
    crossing = {(rel, m) for rel, tree in _sources("tests") for m in _imports(tree)
                if m.split(".")[0] in tests or m.split(".")[0] == "tests"}
    assert crossing == set()
