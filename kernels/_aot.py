"""The kernels and the svmlight parser's loops compiled ahead of time, as one C extension.

Loading a function from Numba's cache still starts Numba: its import and its CPU target
(every registry it loads) cost about 0.55 s of CPU per process, which 9 ranks on 2 cores
pay one after another. ``mpigc warmup`` therefore also compiles every kernel
specialisation (:data:`mpigc.kernels._compile.SPECIALISATIONS`) and the parser's two
loops with ``numba.pycc`` into one extension module, and a rank imports that (a few ms,
Numba not imported) when its key matches. Each exported function forwards to the jitted
loop, which Numba compiles into the module with its own options (fastmath flags,
intrinsics) for this CPU (``target_cpu = "host"``).

The key, in the module's name, covers what the machine code depends on: the sources the
loops are compiled from, the Numba, llvmlite and NumPy versions, the Python build and
extension ABI, and the CPU (model and feature flags from ``/proc/cpuinfo``: code built
for another CPU may use instructions this one lacks). A module of another key is never
loaded; without one (or where the key cannot be found), the loops come from Numba's
cache as before. ``numba.pycc`` is "pending deprecation" in Numba and needs a C
compiler: where either is missing, warmup says so and the Numba path is used.

Where: ``$NUMBA_CACHE_DIR/mpigc-aot/`` when ``NUMBA_CACHE_DIR`` is set, else
``__pycache__/mpigc-aot/`` beside this file.
"""

import hashlib
import importlib.machinery
import importlib.util
import os
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np

import mpigc

_KERNELS = Path(__file__).parent
_DATA = Path(mpigc.__file__).parent / "data"
# Every file whose contents the compiled code follows (the loops, their signatures and
# tables, and this build).
SOURCES = tuple(_KERNELS / name for name in ("_aot.py", "_compile.py", "_layouts.py",
                                             "_loops.py")) + tuple(
    _DATA / name for name in ("_parse.py", "_parse_tables.py", "svmlight.py"))
# /proc/cpuinfo fields that name the CPU and its instruction set (x86, then Arm); the
# others (clock, core ids, bogomips) vary between the cores of one machine
_CPU_FIELDS = {b"vendor_id", b"cpu family", b"model", b"model name", b"stepping", b"flags",
               b"CPU implementer", b"CPU architecture", b"CPU variant", b"CPU part",
               b"Features"}
_SUFFIX = importlib.machinery.EXTENSION_SUFFIXES[0]
# Numba's settings that change the machine code it generates: part of the key, so that a
# warmup run with debug settings never leaves its code to a production run
_CODEGEN_ENV = ("NUMBA_OPT", "NUMBA_BOUNDSCHECK", "NUMBA_CPU_NAME", "NUMBA_CPU_FEATURES",
                "NUMBA_LOOP_VECTORIZE", "NUMBA_SLP_VECTORIZE", "NUMBA_ENABLE_AVX",
                "NUMBA_FASTMATH", "NUMBA_DEBUGINFO")
_loaded = []  # [the module or None], decided once per process


class Unavailable(Exception):
    """The ahead-of-time module cannot be built here (the message says why)."""


def cpu_identity():
    """The first processor's model and feature lines of ``/proc/cpuinfo`` (bytes), or None.

    Read without llvmlite (importing it would cost what the module saves).
    """
    try:
        with open("/proc/cpuinfo", "rb") as f:
            first = f.read(1 << 16).split(b"\n\n", 1)[0]
    except OSError:
        return None
    lines = [line for line in first.splitlines()
             if line.split(b":", 1)[0].strip() in _CPU_FIELDS]
    return b"\n".join(lines) if lines else None


def _package_version(name):
    # the package's _version.py, found without importing the package
    spec = importlib.util.find_spec(name)
    if spec is None or spec.origin is None:
        return b"absent"
    try:
        return Path(spec.origin).with_name("_version.py").read_bytes()
    except OSError:
        from importlib.metadata import version  # not on the usual path: ~10 ms to import

        return version(name).encode()


def key(sources=SOURCES, cpu=None):
    """The module's key (hex), or None when this CPU cannot be identified."""
    cpu = cpu_identity() if cpu is None else cpu
    if cpu is None:
        return None
    h = hashlib.sha256(b"mpigc-aot 1\0")
    for part in ([p.read_bytes() for p in sources]
                 + [_package_version("numba"), _package_version("llvmlite"),
                    np.__version__.encode(), sys.version.encode(), _SUFFIX.encode(), cpu,
                    repr([os.environ.get(k) for k in _CODEGEN_ENV]).encode()]):
        h.update(len(part).to_bytes(8, "little"))
        h.update(part)
    return h.hexdigest()[:32]


def directory():
    """Where the modules are kept (see the module docstring)."""
    cache = os.environ.get("NUMBA_CACHE_DIR")
    if cache:
        return os.path.join(cache, "mpigc-aot")
    return str(_KERNELS / "__pycache__" / "mpigc-aot")


def module_path():
    """``(module name, file path)`` of this key's module, or None (no CPU identity)."""
    k = key()
    if k is None:
        return None
    name = f"mpigc_aot_{k}"
    return name, os.path.join(directory(), name + _SUFFIX)


def _import(found):
    if found is None or not os.path.exists(found[1]):
        return None
    try:  # module_from_spec is where an extension is dlopen'ed
        spec = importlib.util.spec_from_file_location(*found)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    except (ImportError, OSError):
        # unreadable, truncated, or on a noexec mount: the Numba path is as correct
        return None
    return module


def load():
    """The module of this key, imported once per process, or None (then use Numba)."""
    if not _loaded:
        _loaded.append(_import(module_path()))
    return _loaded[0]


def _forwarder(dispatcher, n_args):
    # pycc exports a Python function of fixed arity: one that only calls the jitted loop,
    # so that Numba compiles the loop with the options of its own decorator
    args = ", ".join(f"a{i}" for i in range(n_args))
    scope = {"loop": dispatcher}
    exec(f"def forward({args}):\n    return loop({args})\n", scope)
    return scope["forward"]


def exports():
    """Exported name -> (dispatcher, argument types) of everything the module holds."""
    from mpigc.data.svmlight import parser_signatures

    from ._compile import SPECIALISATIONS
    from ._layouts import entry_name

    loops = {entry_name(k): v for k, v in SPECIALISATIONS.items()}
    loops.update(parser_signatures())
    return loops


def build():
    """Compile this key's module unless it exists, under the cache lock.

    Returns
    -------
    path : str
    built : bool
        False when the module was there already.

    Raises
    ------
    Unavailable
        No CPU identity, no ``numba.pycc``, no working C compiler, or the build failed.
    """
    found = module_path()
    if found is None:
        raise Unavailable("this CPU has no /proc/cpuinfo to key the module by")
    name, path = found
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pycc's pending-deprecation notice
        try:
            from numba.pycc import CC
        except ImportError as exc:
            raise Unavailable(f"numba.pycc cannot be imported ({exc})") from None
    from ._compile import cache_lock

    try:
        if _usable(found):
            return path, False
        os.makedirs(directory(), exist_ok=True)
        with cache_lock():
            if _usable(found):  # another process built it meanwhile
                return path, False
            _compile_into(CC, name, path)
        if not _usable(found):
            raise Unavailable(f"the module built in {directory()} cannot be loaded (a "
                              f"noexec file system?)")
    except OSError as exc:
        raise Unavailable(f"cannot write {directory()}: {exc.strerror or exc}") from None
    return path, True


def _usable(found):
    # a file there that does not load (truncated by a killed build, copied from elsewhere)
    # is removed, so that it is built again
    if _import(found) is not None:
        return True
    if os.path.exists(found[1]):
        os.remove(found[1])
    return False


def _compile_into(CC, name, path):
    with tempfile.TemporaryDirectory(prefix=".tmp.", dir=directory()) as tmp:
        try:
            cc = CC(name)  # checks for a C compiler first
        except Exception as exc:  # noqa: BLE001 (RuntimeError or setuptools' errors)
            raise Unavailable(f"no working C compiler for numba.pycc "
                              f"({type(exc).__name__})") from None
        cc.output_dir, cc.output_file, cc.target_cpu = tmp, os.path.basename(path), "host"
        for export, (dispatcher, signature) in exports().items():
            dispatcher.compile(signature)  # the JIT's result type (from its cache)
            result = dispatcher.overloads[tuple(signature)].signature.return_type
            cc.export(export, result(*signature))(_forwarder(dispatcher, len(signature)))
        try:
            cc.compile()
        except Exception as exc:  # noqa: BLE001 (the compiler's, linker's, file system's)
            raise Unavailable(f"numba.pycc failed: {type(exc).__name__}: {exc}") from None
        os.replace(os.path.join(tmp, os.path.basename(path)), path)  # atomic for readers
