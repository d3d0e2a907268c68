"""The Python interpreter a sandbox sees, and the few host paths it needs.

The sandbox root starts empty. We add, read-only, only the interpreter binary, its standard library
and the shared libraries that the binary and the stdlib's C extensions link against (found with
`ldd`). Site-packages are never bound: `-I -S` keeps the program to the stdlib, and any
site-packages directory that lives inside the stdlib tree is hidden under an empty tmpfs.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass

# Tried in order; the first that runs and answers the probe wins. The system interpreter comes
# first: it lives in world-readable /usr, whereas a pyenv/venv base often sits under /root.
_CANDIDATES = ("/usr/bin/python3",)

# glibc dlopen()s libgcc_s when a thread exits (pthread_exit unwinds), so `ldd` never lists it.
_DLOPENED_LIBS = ("libgcc_s.so.1",)

_PROBE = r"""
import json, os, sys, sysconfig
paths = sysconfig.get_paths()
shared = sysconfig.get_config_var("Py_ENABLE_SHARED")
libpython = None
if shared:
    libpython = os.path.join(sysconfig.get_config_var("LIBDIR") or "", sysconfig.get_config_var("LDLIBRARY") or "")
print(json.dumps({
    "executable": os.path.realpath(sys.executable),
    "stdlib": os.path.realpath(paths["stdlib"]),
    "platstdlib": os.path.realpath(paths["platstdlib"]),
    "site": sorted({os.path.realpath(paths["purelib"]), os.path.realpath(paths["platlib"])}),
    "libpython": libpython,
    "version": list(sys.version_info[:3]),
}))
"""


@dataclass(frozen=True)
class Interpreter:
    """What to mount so that `executable` runs inside an otherwise empty root.

    Attributes:
        executable: absolute path of the interpreter, the same inside and outside the sandbox.
        ro_binds: (host source, sandbox destination) pairs, mounted read-only.
        symlinks: (target, link) pairs recreating the host's merged-/usr links (/lib -> usr/lib).
        hidden: directories inside a bound tree to cover with an empty tmpfs (site-packages).
        version: the interpreter's (major, minor, micro).
    """

    executable: str
    ro_binds: tuple[tuple[str, str], ...]
    symlinks: tuple[tuple[str, str], ...]
    hidden: tuple[str, ...]
    version: tuple[int, ...]


class InterpreterNotFound(RuntimeError):
    """No usable Python interpreter could be found for the sandbox."""


def candidate_interpreters() -> list[str]:
    """Interpreters to try: $R1_SANDBOX_PYTHON, the system python3, this process's base interpreter."""
    names = []
    if os.environ.get("R1_SANDBOX_PYTHON"):
        names.append(os.environ["R1_SANDBOX_PYTHON"])
    names.extend(_CANDIDATES)
    base = getattr(sys, "_base_executable", None) or sys.executable
    names.append(base)
    return [n for i, n in enumerate(names) if n and n not in names[:i] and os.path.exists(n)]


@functools.lru_cache(maxsize=None)
def find_interpreter(executable: str | None = None) -> Interpreter:
    """Probe the interpreter (once per process) and work out the read-only binds it needs."""
    errors = []
    for exe in [executable] if executable else candidate_interpreters():
        try:
            return _describe(exe)
        except (OSError, ValueError, subprocess.SubprocessError) as exc:
            errors.append(f"{exe}: {exc}")
    raise InterpreterNotFound("no usable python interpreter for the sandbox: " + "; ".join(errors))


def _describe(exe: str) -> Interpreter:
    out = subprocess.run(
        [exe, "-I", "-S", "-c", _PROBE], capture_output=True, text=True, timeout=30,
        env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}, check=True,
    ).stdout
    info = json.loads(out)
    stdlib_dirs = sorted({info["stdlib"], info["platstdlib"]})
    elves = [info["executable"]]
    if info["libpython"] and os.path.exists(info["libpython"]):
        elves.append(info["libpython"])
    for d in stdlib_dirs:
        dyn = os.path.join(d, "lib-dynload")
        if os.path.isdir(dyn):
            elves.extend(os.path.join(dyn, f) for f in sorted(os.listdir(dyn)) if f.endswith(".so"))
    libs = _linked_libraries(elves)
    libs |= _dlopened_libraries(libs)

    binds: dict[str, str] = {}
    for d in stdlib_dirs:
        binds[d] = d
    for path in [info["executable"], *sorted(libs)]:
        dest = os.path.join(os.path.realpath(os.path.dirname(path)), os.path.basename(path))
        binds.setdefault(dest, os.path.realpath(path))
    hidden = tuple(s for s in info["site"] if any(_inside(s, d) for d in stdlib_dirs) and os.path.isdir(s))
    return Interpreter(
        executable=info["executable"],
        ro_binds=tuple((src, dest) for dest, src in sorted(binds.items())),
        symlinks=_merged_usr_links(),
        hidden=hidden,
        version=tuple(info["version"]),
    )


def _inside(path: str, directory: str) -> bool:
    return os.path.commonpath([path, directory]) == directory


def _linked_libraries(elves: list[str]) -> set[str]:
    """Shared objects that `ldd` reports for the given ELF files (absolute host paths)."""
    ldd = shutil.which("ldd", path="/usr/bin:/bin")
    if ldd is None:
        raise ValueError("ldd not found: cannot work out which shared libraries the interpreter needs")
    libs: set[str] = set()
    for start in range(0, len(elves), 32):
        out = subprocess.run([ldd, *elves[start:start + 32]], capture_output=True, text=True,
                             timeout=60, env={"PATH": "/usr/bin:/bin", "LANG": "C"}).stdout
        for line in out.splitlines():
            line = line.strip()
            if "=>" in line:
                target = line.split("=>", 1)[1].strip().split(" ")[0]
            else:
                target = line.split(" ")[0]
            if target.startswith("/") and os.path.exists(target):
                libs.add(target)
    return libs


def _dlopened_libraries(libs: set[str]) -> set[str]:
    """Libraries glibc loads at run time, looked up beside libc."""
    libc_dirs = {os.path.dirname(p) for p in libs if os.path.basename(p).startswith("libc.so")}
    found = set()
    for name in _DLOPENED_LIBS:
        for d in libc_dirs:
            if os.path.exists(os.path.join(d, name)):
                found.add(os.path.join(d, name))
    return found


def _merged_usr_links() -> tuple[tuple[str, str], ...]:
    """Recreate top-level links such as /lib -> usr/lib so the ELF loader path resolves."""
    links = []
    for top in ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"):
        if os.path.islink(top):
            links.append((os.readlink(top), top))
    return tuple(links)
