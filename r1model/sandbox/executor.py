"""Run one untrusted Python program inside bubblewrap and collect what it did.

Layers, outermost first:
- bubblewrap, started as an unprivileged host user (nobody) when we are root, so that RLIMIT_NPROC
  is enforced (the kernel exempts uid 0) and a mistake in the mount list still meets file
  permissions;
- every namespace unshared (user, pid, net, ipc, uts, cgroup, mount): no network but a lone
  loopback, its own pid 1 that takes every process with it when it dies, no way to signal the host;
- an empty root holding only the interpreter, its stdlib and the libraries they link (read-only),
  the program's own files under /sandbox (read-only), a private size-capped tmpfs /tmp and /dev/shm,
  a fresh /proc and a minimal /dev;
- no capabilities, a new session (no TIOCSTI into our terminal), no nested user namespaces
  (so no mounting an uncapped tmpfs), a clean environment (PATH and LANG only);
- a seccomp filter (seccomp.py) denying SysV shm, memfd, io_uring, bpf, perf, userfaultfd, keys;
- rlimits set inside by a tiny bootstrap before exec: CPU, address space, processes, file size,
  open files, no core dumps;
- outside: a wall-clock deadline and an output cap, both ending in SIGKILL to the sandbox's pid 1
  (the kernel then kills every process in its pid namespace) and to bwrap's process group.

Without bubblewrap we refuse (`SandboxUnavailable`) unless R1_SANDBOX_UNSAFE=1, which runs the
bootstrap as a bare subprocess and logs a warning on every run.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import selectors
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field, replace

from r1model.sandbox import seccomp
from r1model.sandbox.interpreter import Interpreter, InterpreterNotFound, find_interpreter

log = logging.getLogger("r1model.sandbox")

UNSAFE_ENV = "R1_SANDBOX_UNSAFE"
SANDBOX_DIR = "/sandbox"          # where the program's files appear inside
NOBODY = 65534                    # host and sandbox uid/gid the program runs as
_SANDBOX_PATH = "/usr/bin:/bin"
_BWRAP_SEARCH_PATH = "/usr/bin:/bin:/usr/local/bin"

# Runs first inside the sandbox: lower the limits, then exec the real program (a fresh
# interpreter: measured no slower than running it in place with runpy). Soft == hard except
# for CPU, where the one-second gap delivers SIGXCPU (reported as timeout) before SIGKILL.
_BOOTSTRAP = (
    "import os,resource as r,signal,sys\n"
    "a=sys.argv\n"
    "started,cpu,mem,nproc,fsize,nofile=(int(x) for x in a[1:7])\n"
    "for k,v in ((r.RLIMIT_CPU,(cpu,cpu+1)),(r.RLIMIT_AS,(mem,mem)),(r.RLIMIT_NPROC,(nproc,nproc)),"
    "(r.RLIMIT_FSIZE,(fsize,fsize)),(r.RLIMIT_NOFILE,(nofile,nofile)),(r.RLIMIT_CORE,(0,0))):\n"
    " r.setrlimit(k,v)\n"
    # Ignored SIGXFSZ survives exec: an oversized write fails with EFBIG instead of killing silently.
    "signal.signal(signal.SIGXFSZ,signal.SIG_IGN)\n"
    # bwrap sets PWD after --clearenv; the program gets PATH and LANG only.
    "os.environ.pop('PWD',None)\n"
    # Tell the judge the sandbox is up and limited, then close the pipe before the program runs:
    # only our code ever writes here, so a program cannot fake (or suppress) this signal.
    "os.write(started,b'1')\n"
    "os.close(started)\n"
    "os.execv(sys.executable,[sys.executable,'-I','-S','-B',*a[7:]])\n"
)


class SandboxUnavailable(RuntimeError):
    """bubblewrap is missing or does not work here, and unsafe mode was not asked for."""


@dataclass(frozen=True)
class SandboxLimits:
    """Resource limits for one run. Defaults suit HumanEval-sized programs.

    Attributes:
        timeout: wall-clock seconds before the whole process tree is killed (verdict: timeout).
        cpu_seconds: RLIMIT_CPU; None means ceil(timeout) + 1, so the wall clock normally fires first.
        memory_bytes: RLIMIT_AS, address space per process (a 100 GB allocation -> MemoryError).
        max_processes: RLIMIT_NPROC inside the sandbox's own user namespace (stops fork bombs;
            threads count too).
        file_size_bytes: RLIMIT_FSIZE, the largest file a process may write.
        tmpfs_bytes: size of each private tmpfs (/tmp and /dev/shm).
        open_files: RLIMIT_NOFILE.
        stdout_bytes: stdout kept; beyond it the run is killed and marked truncated.
        stderr_bytes: stderr kept; beyond it the run is killed and marked truncated.
    """

    timeout: float = 10.0
    cpu_seconds: int | None = None
    memory_bytes: int = 512 << 20
    max_processes: int = 16
    file_size_bytes: int = 16 << 20
    tmpfs_bytes: int = 64 << 20
    open_files: int = 64
    stdout_bytes: int = 1 << 20
    stderr_bytes: int = 64 << 10

    def __post_init__(self):
        for name in ("timeout", "memory_bytes", "max_processes", "file_size_bytes", "tmpfs_bytes",
                     "open_files", "stdout_bytes", "stderr_bytes"):
            if not getattr(self, name) > 0:
                raise ValueError(f"SandboxLimits.{name}: must be positive, got {getattr(self, name)!r}")
        if self.cpu_seconds is not None and self.cpu_seconds < 1:
            raise ValueError(f"SandboxLimits.cpu_seconds: must be at least 1, got {self.cpu_seconds!r}")

    def worst_case_memory(self) -> int:
        """Bytes one sandbox can pin at most: every process at its address-space cap, both tmpfs
        full. (SysV shm and memfd are denied by seccomp; a cgroup would make this a hard total.)"""
        return self.max_processes * self.memory_bytes + 2 * self.tmpfs_bytes

    def cpu_limit(self) -> int:
        return self.cpu_seconds if self.cpu_seconds is not None else int(self.timeout) + 2


@dataclass(frozen=True)
class RunResult:
    """What one sandboxed run produced.

    Attributes:
        exit_code: the program's exit status; 128+N when killed by signal N; None if we killed it.
        stdout, stderr: captured bytes, at most the limits' caps.
        timed_out: the wall-clock deadline fired and we killed the tree.
        truncated: stdout or stderr passed its cap and we killed the tree.
        sandbox_error: the sandbox itself failed before the program started (text says why).
        wall_time: seconds from start to the end of the run.
        unsafe: ran without bubblewrap (R1_SANDBOX_UNSAFE=1).
    """

    exit_code: int | None
    stdout: bytes
    stderr: bytes
    timed_out: bool = False
    truncated: bool = False
    sandbox_error: str | None = None
    wall_time: float = 0.0
    unsafe: bool = False


@dataclass
class _Streams:
    """Incremental, capped reading of the child's pipes (and feeding its stdin)."""

    limits: SandboxLimits
    stdin: bytes
    out: bytearray = field(default_factory=bytearray)
    err: bytearray = field(default_factory=bytearray)
    status: bytearray = field(default_factory=bytearray)
    started: bytearray = field(default_factory=bytearray)
    truncated: bool = False


def bwrap_path() -> str | None:
    return shutil.which("bwrap", path=_BWRAP_SEARCH_PATH)


def unsafe_mode() -> bool:
    return os.environ.get(UNSAFE_ENV, "") == "1"


@functools.lru_cache(maxsize=1)
def _bwrap_works() -> str | None:
    """None when bubblewrap can run a trivial sandboxed program here, else the reason it cannot."""
    if bwrap_path() is None:
        return "bubblewrap (bwrap) is not installed; install the Debian package `bubblewrap`"
    try:
        interp = find_interpreter()
    except InterpreterNotFound as exc:
        return str(exc)
    with tempfile.TemporaryDirectory(prefix="r1sbx-probe-") as work:
        _place_files(work, {"main.py": "print('ok')"})
        result = _run_bwrap(interp, work, [f"{SANDBOX_DIR}/main.py"], b"", SandboxLimits(timeout=30))
    if result.sandbox_error or result.stdout.strip() != b"ok":
        detail = result.sandbox_error or result.stderr.decode(errors="replace")[-500:]
        return (f"bubblewrap is installed but cannot start a sandbox here: {detail} (the interpreter, "
                f"its libraries and the temp dir must be readable by uid {NOBODY}; "
                f"R1_SANDBOX_PYTHON picks another interpreter)")
    return None


def sandbox_available() -> bool:
    """True when bubblewrap works here (unsafe mode does not count)."""
    return _bwrap_works() is None


def run_python(files: dict[str, bytes | str], main: str = "main.py", *, stdin: bytes = b"",
               limits: SandboxLimits | None = None, args: list[str] | tuple[str, ...] = ()) -> RunResult:
    """Run `python3 /sandbox/<main> *args` with `files` placed read-only in /sandbox; cwd is /tmp.

    Raises SandboxUnavailable when bubblewrap cannot be used and unsafe mode is off.
    """
    limits = limits or SandboxLimits()
    if main not in files:
        raise ValueError(f"files: the main file {main!r} is not among {sorted(files)}")
    for name in files:
        if not name or "/" in name or name.startswith("."):
            raise ValueError(f"files: bad file name {name!r} (plain names only)")
    reason = _bwrap_works()
    if reason is not None and not unsafe_mode():
        raise SandboxUnavailable(
            f"{reason}. Model-written code is never run outside the sandbox; set "
            f"{UNSAFE_ENV}=1 only on a development machine to run it as a bare subprocess.")
    if reason is not None:
        log.warning("UNSAFE: running model-written code WITHOUT a sandbox (%s=1; %s). "
                    "No filesystem, network or process isolation.", UNSAFE_ENV, reason)
    try:
        with tempfile.TemporaryDirectory(prefix="r1sbx-") as work:
            _place_files(work, files)
            if reason is None:
                return _run_bwrap(find_interpreter(), work, [f"{SANDBOX_DIR}/{main}", *args], stdin, limits)
            return _run_unsafe(work, [main, *args], stdin, limits)
    except OSError as exc:  # our side failed (disk full, out of fds): not the program's fault
        return RunResult(None, b"", b"", sandbox_error=f"could not prepare or run the sandbox: {exc}",
                         unsafe=reason is not None)


def _place_files(work: str, files: dict[str, bytes | str]) -> None:
    """Write the program's files to work/src, readable (not writable) by the unprivileged runner."""
    src = os.path.join(work, "src")
    os.mkdir(src)
    for name, data in files.items():
        with open(os.path.join(src, name), "wb") as fh:
            fh.write(data.encode() if isinstance(data, str) else data)
        os.chmod(os.path.join(src, name), 0o444)
    os.chmod(src, 0o555)
    os.chmod(work, 0o711)


def bwrap_argv(interp: Interpreter, work: str, program: list[str], limits: SandboxLimits,
               status_fd: int, started_fd: int, seccomp_fd: int | None = None) -> list[str]:
    """The full bwrap command line for one run (exposed for tests and documentation)."""
    argv = [bwrap_path() or "bwrap",
            "--unshare-all", "--unshare-user", "--disable-userns",
            "--uid", str(NOBODY), "--gid", str(NOBODY), "--hostname", "sandbox",
            "--die-with-parent", "--new-session", "--cap-drop", "ALL",
            "--clearenv", "--setenv", "PATH", _SANDBOX_PATH, "--setenv", "LANG", "C.UTF-8",
            "--json-status-fd", str(status_fd)]
    if seccomp_fd is not None:
        argv += ["--seccomp", str(seccomp_fd)]
    for target, link in interp.symlinks:
        argv += ["--symlink", target, link]
    for src, dest in interp.ro_binds:
        argv += ["--ro-bind", src, dest]
    for hidden in interp.hidden:
        argv += ["--tmpfs", hidden, "--remount-ro", hidden]
    argv += ["--ro-bind", os.path.join(work, "src"), SANDBOX_DIR,
             "--proc", "/proc", "--dev", "/dev",
             "--size", str(limits.tmpfs_bytes), "--tmpfs", "/tmp",
             "--size", str(limits.tmpfs_bytes), "--tmpfs", "/dev/shm",
             "--chdir", "/tmp",
             "--", interp.executable, "-I", "-S", "-B", "-c", _BOOTSTRAP, str(started_fd),
             *_limit_args(limits), *program]
    return argv


def _limit_args(limits: SandboxLimits) -> list[str]:
    return [str(v) for v in (limits.cpu_limit(), limits.memory_bytes, limits.max_processes,
                             limits.file_size_bytes, limits.open_files)]


def _drop_to_nobody() -> dict:
    """Popen arguments that start the child as host user nobody when we are root."""
    if os.geteuid() != 0:
        return {}
    return {"user": NOBODY, "group": NOBODY, "extra_groups": []}


def _run_bwrap(interp: Interpreter, work: str, program: list[str], stdin: bytes,
               limits: SandboxLimits) -> RunResult:
    def argv(started: int, status: int, seccomp_fd: int | None) -> list[str]:
        return bwrap_argv(interp, work, program, limits, status, started, seccomp_fd)

    return _launch(argv, stdin, limits, cwd="/", with_status=True)


def _run_unsafe(work: str, program: list[str], stdin: bytes, limits: SandboxLimits) -> RunResult:
    exe = find_interpreter().executable
    scratch = os.path.join(work, "tmp")
    os.mkdir(scratch)
    os.chmod(scratch, 0o777)
    script = [os.path.join(work, "src", program[0]), *program[1:]]

    def argv(started: int, _status: int, _seccomp: int | None) -> list[str]:
        return [exe, "-I", "-S", "-B", "-c", _BOOTSTRAP, str(started), *_limit_args(limits), *script]

    return replace(_launch(argv, stdin, limits, cwd=scratch, with_status=False), unsafe=True)


def _launch(make_argv, stdin: bytes, limits: SandboxLimits, *, cwd: str, with_status: bool) -> RunResult:
    """Start the command, pump its pipes under the limits, and report what happened.

    Two side pipes, never readable or writable by the program itself: `started` (the bootstrap
    writes b"1" once the limits are in place, then closes it) and bwrap's JSON status (the host
    pid of the sandbox's pid 1, needed to kill it). No `started` means the sandbox failed.
    """
    started_r, started_w = os.pipe()
    status_r, status_w = os.pipe() if with_status else (-1, -1)
    seccomp_r = -1
    to_close = {fd for fd in (started_r, started_w, status_r, status_w) if fd >= 0}
    streams = _Streams(limits, stdin)
    try:
        if with_status and seccomp.supported():
            seccomp_r = _pipe_with(seccomp.filter_program())
            to_close.add(seccomp_r)
        argv = make_argv(started_w, status_w, seccomp_r if seccomp_r >= 0 else None)
        start = time.monotonic()
        try:
            proc = subprocess.Popen(
                argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                pass_fds=tuple(fd for fd in (started_w, status_w, seccomp_r) if fd >= 0), cwd=cwd,
                env={"PATH": _SANDBOX_PATH, "LANG": "C.UTF-8"}, start_new_session=True,
                **_drop_to_nobody())
        except OSError as exc:
            return RunResult(None, b"", b"", sandbox_error=f"could not start the sandbox: {exc}")
        for fd in (started_w, status_w, seccomp_r):
            if fd >= 0:
                os.close(fd)
                to_close.discard(fd)
        side = {started_r: streams.started}
        if status_r >= 0:
            side[status_r] = streams.status
        timed_out = _pump(proc, streams, start + limits.timeout, side)
    finally:
        for fd in to_close:
            os.close(fd)
    error = None
    if not streams.started.startswith(b"1"):
        error = (f"the sandbox never started the program (exit {proc.returncode}"
                 f"{', timed out' if timed_out else ''}): "
                 f"{bytes(streams.err[-500:]).decode(errors='replace').strip()}")
    return RunResult(
        exit_code=None if (timed_out or streams.truncated) else _exit_code(proc.returncode),
        stdout=bytes(streams.out), stderr=bytes(streams.err), timed_out=timed_out,
        truncated=streams.truncated, sandbox_error=error, wall_time=time.monotonic() - start)


def _pipe_with(data: bytes) -> int:
    """A pipe already holding `data` (small: it must fit the pipe buffer); returns the read end."""
    read_end, write_end = os.pipe()
    try:
        os.write(write_end, data)
    finally:
        os.close(write_end)
    return read_end


def _exit_code(returncode: int) -> int:
    return 128 - returncode if returncode < 0 else returncode


def _pump(proc: subprocess.Popen, streams: _Streams, deadline: float, side: dict[int, bytearray]) -> bool:
    """Feed stdin, read stdout/stderr/side pipes until all close; kill at the deadline or the caps.

    Returns True when the deadline fired.
    """
    sel = selectors.DefaultSelector()
    limits = streams.limits
    sel.register(proc.stdout, selectors.EVENT_READ, (streams.out, limits.stdout_bytes, True))
    sel.register(proc.stderr, selectors.EVENT_READ, (streams.err, limits.stderr_bytes, True))
    for fd, buf in side.items():
        sel.register(fd, selectors.EVENT_READ, (buf, 1 << 16, False))
    pending = memoryview(streams.stdin)
    if pending:
        os.set_blocking(proc.stdin.fileno(), False)
        sel.register(proc.stdin, selectors.EVENT_WRITE, None)
    else:
        proc.stdin.close()
    timed_out = False
    try:
        while sel.get_map():
            left = deadline - time.monotonic()
            if left <= 0:
                timed_out = True
                break
            for key, _ in sel.select(timeout=min(left, 0.5)):
                if key.data is None:
                    pending = _feed(sel, key, proc, pending)
                    continue
                buf, cap, is_output = key.data
                chunk = os.read(key.fd, 1 << 16)
                if not chunk:
                    sel.unregister(key.fileobj)
                    continue
                room = cap - len(buf)
                buf += chunk[:room]
                if len(chunk) > room and is_output:
                    streams.truncated = True
            if streams.truncated:
                break
        if not timed_out and not streams.truncated:
            try:
                proc.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                timed_out = True
    finally:
        sel.close()
        if timed_out or streams.truncated or proc.poll() is None:
            _kill_tree(proc, _sandbox_init_pid(streams.status))
        for pipe in (proc.stdin, proc.stdout, proc.stderr):
            try:
                pipe.close()
            except OSError:
                pass
    return timed_out


def _feed(sel: selectors.BaseSelector, key, proc: subprocess.Popen, pending: memoryview) -> memoryview:
    try:
        written = os.write(key.fd, pending[:1 << 16])
        pending = pending[written:]
    except (BrokenPipeError, BlockingIOError) as exc:
        if isinstance(exc, BrokenPipeError):
            pending = pending[:0]
    if not pending:
        sel.unregister(key.fileobj)
        try:
            proc.stdin.close()
        except OSError:
            pass
    return pending


def _sandbox_init_pid(status: bytes) -> int | None:
    """The host pid of the sandbox's pid 1, from bwrap's --json-status-fd report."""
    for line in bytes(status).splitlines():
        try:
            report = json.loads(line)
        except ValueError:
            continue
        if isinstance(report, dict) and isinstance(report.get("child-pid"), int):
            return report["child-pid"]
    return None


def _kill_tree(proc: subprocess.Popen, init_pid: int | None = None) -> None:
    """Kill the sandbox's pid 1, wait for bwrap, then SIGKILL bwrap's whole process group.

    Killing the namespace's pid 1 makes the kernel kill every process in it, and pid 1 only
    finishes dying once they are all gone; bwrap, its parent, exits after that. So when this returns
    nothing of the run is left (killing bwrap first would leave the teardown to happen later).
    """
    if init_pid is not None and proc.poll() is None:
        try:
            os.kill(init_pid, signal.SIGKILL)
            proc.wait(timeout=5)
        except (ProcessLookupError, PermissionError, subprocess.TimeoutExpired):
            pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        proc.kill()
    except OSError:
        pass
    proc.wait()
