"""Attacks that must fail: each gets its expected status, the host is unharmed, the next run is clean.

Real services: the session's redis-server and PostgreSQL (tests/conftest.py) listen on 127.0.0.1;
the sandbox must not reach them.
"""

import os
import secrets
import socket
import subprocess

import pytest

from r1model.sandbox import SandboxLimits, judge_function, judge_stdio, run_python, sandbox_available
from r1model.sandbox.judge import classify_stdio_run
from tests.services import wait_until

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not sandbox_available(), reason="bubblewrap does not work here"),
]
PROJECT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
NOBODY = 65534
LIMITS = SandboxLimits()

CLEAN_PROBE = """
import os
procs = sorted(int(p) for p in os.listdir('/proc') if p.isdigit())
print('tmp', sorted(os.listdir('/tmp')), 'shm', sorted(os.listdir('/dev/shm')), 'procs', procs)
"""


def assert_next_run_clean():
    """A fresh run sees an empty /tmp and /dev/shm and no process but its own pid 1 and itself."""
    verdict = judge_stdio(CLEAN_PROBE, [("", "tmp [] shm [] procs [1, 2]")], timeout=10)
    assert verdict.passed, (verdict.status, verdict.detail, verdict.stdout)


# Prepended to an attack: print the command line the host sees for this process (and, by fork, its children).
SHOW_CMDLINE = "print(open('/proc/self/cmdline').read().split(chr(0)), flush=True)\n"


def run_marked(code: str, timeout: float):
    """Run `code` with a fresh marker as its argv[1] and return (marker, RunResult).

    Every process the run forks inherits that command line, so `processes_of_run(marker)` finds exactly this
    run's processes on the host (bwrap's and the program's), and no other sandbox run's at the same time.
    """
    marker = "r1-attack-" + secrets.token_hex(8)
    result = run_python({"main.py": SHOW_CMDLINE + code}, args=[marker], limits=SandboxLimits(timeout=timeout))
    assert marker in result.stdout.decode(errors="replace"), result  # the host can see the marker
    return marker, result


def processes_of_run(marker: str) -> set[int]:
    """Host pids (zombies excepted: their command line is empty) whose command line carries `marker`."""
    pids = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as fh:
                argv = fh.read().split(b"\0")
        except OSError:
            continue
        if marker.encode() in argv:
            pids.add(int(entry))
    return pids


def assert_run_left_nothing(marker: str) -> None:
    wait_until(lambda: not processes_of_run(marker), timeout=10,
               what=lambda: f"every process of the run gone (left: {sorted(processes_of_run(marker))})")


# --- time, processes, memory, disk, output -------------------------------------------------------


def test_infinite_loop_times_out_within_ten_percent_of_the_limit():
    verdict = judge_stdio("while True:\n    pass\n", [("", "")], timeout=2.0)
    assert verdict.status == "timeout"
    assert 2.0 <= verdict.wall_time <= 2.2, verdict.wall_time  # the acceptance bound
    assert_next_run_clean()


def test_sleeping_children_are_killed_with_the_run():
    code = ("import os, time\n"
            "for _ in range(3):\n"
            "    if os.fork() == 0:\n"
            "        os.setsid()\n"
            "        time.sleep(1000)\n"
            "time.sleep(1000)\n")
    marker, result = run_marked(code, timeout=1.5)
    assert classify_stdio_run(result, "").status == "timeout"
    assert_run_left_nothing(marker)
    assert_next_run_clean()


def test_fork_bomb_is_stopped_at_the_process_cap():
    code = ("import os, time\n"
            "n = 0\n"
            "while True:\n"
            "    try:\n"
            "        pid = os.fork()\n"
            "    except OSError as exc:\n"
            "        print('capped after', n, exc.errno)\n"
            "        break\n"
            "    if pid == 0:\n"
            "        time.sleep(30)\n"
            "        os._exit(0)\n"
            "    n += 1\n")
    result = run_python({"main.py": code}, limits=SandboxLimits(timeout=10))
    words = result.stdout.decode().split()
    assert words[:2] == ["capped", "after"], result
    assert 0 < int(words[2]) < LIMITS.max_processes  # pid 1 and the parent count too
    assert int(words[3]) == 11  # EAGAIN: RLIMIT_NPROC
    assert_next_run_clean()


def test_exponential_fork_bomb_ends_in_timeout_and_leaves_nothing_behind():
    code = ("import os\n"
            "while True:\n"
            "    try:\n"
            "        os.fork()\n"
            "    except OSError:\n"
            "        pass\n")
    marker, result = run_marked(code, timeout=2.0)
    assert classify_stdio_run(result, "").status == "timeout"
    assert_run_left_nothing(marker)
    assert subprocess.run(["true"]).returncode == 0  # the host can still start processes
    assert_next_run_clean()


def test_hundred_gigabyte_allocation_is_a_memory_verdict():
    verdict = judge_stdio("x = bytearray(100 * 2**30)\nprint(len(x))\n", [("", str(100 * 2**30))])
    assert verdict.status == "memory", (verdict.status, verdict.detail)
    growing = judge_stdio("chunks = []\nwhile True:\n    chunks.append(bytearray(2**24))\n", [("", "")])
    assert growing.status == "memory", (growing.status, growing.detail)
    assert_next_run_clean()


@pytest.mark.parametrize("directory", ["/tmp", "/dev/shm"])
def test_filling_a_tmpfs_is_capped_and_gone_next_run(directory):
    marker = "fill-" + secrets.token_hex(6)
    code = (f"import os\n"
            f"total = 0\n"
            f"block = b'x' * 2**20\n"
            f"try:\n"
            f"    for i in range(10_000):\n"
            f"        with open('{directory}/{marker}-%d' % i, 'wb') as fh:\n"
            f"            for _ in range(8):\n"
            f"                fh.write(block)\n"
            f"                fh.flush()\n"
            f"                total += len(block)\n"
            f"except OSError as exc:\n"
            f"    print('stopped', total, exc.errno)\n")
    result = run_python({"main.py": code}, limits=SandboxLimits(timeout=20))
    words = result.stdout.decode().split()
    assert words[:1] == ["stopped"], result
    assert int(words[1]) <= LIMITS.tmpfs_bytes
    assert int(words[2]) == 28  # ENOSPC: the tmpfs is full, not the host
    assert not any(marker in name for name in os.listdir(directory))  # never on the host's side
    assert_next_run_clean()


def test_one_big_file_stops_at_the_file_size_limit():
    code = ("try:\n"
            "    with open('/tmp/big', 'wb') as fh:\n"
            "        fh.write(b'x' * (LIMIT + 1))\n"
            "except OSError as exc:\n"
            "    print('refused', exc.errno)\n").replace("LIMIT", str(LIMITS.file_size_bytes))
    verdict = judge_stdio(code, [("", "refused 27")])  # EFBIG
    assert verdict.passed, (verdict.status, verdict.detail, verdict.stdout)


def test_a_gigabyte_of_output_is_truncated():
    code = "import sys\nchunk = 'x' * 2**20\nfor _ in range(1024):\n    sys.stdout.write(chunk)\n"
    result = run_python({"main.py": code}, limits=SandboxLimits(timeout=30))
    assert result.truncated and result.exit_code is None
    assert len(result.stdout) == LIMITS.stdout_bytes
    verdict = judge_stdio(code, [("", "x")], timeout=30)
    assert verdict.status == "failed" and "output limit" in verdict.detail
    flood = run_python({"main.py": code.replace("stdout", "stderr")}, limits=SandboxLimits(timeout=30))
    assert flood.truncated and len(flood.stderr) == LIMITS.stderr_bytes
    assert_next_run_clean()


# --- secrets ---------------------------------------------------------------------------------------


@pytest.fixture
def canaries(monkeypatch):
    """A canary secret in the judge's environment and in world-readable files in the project and /root."""
    secret = "CANARY-" + secrets.token_hex(12)
    monkeypatch.setenv("R1_SANDBOX_TEST_CANARY", secret)
    paths = [os.path.join(PROJECT, f".sandbox-canary-{secrets.token_hex(4)}"),
             f"/root/.sandbox-canary-{secrets.token_hex(4)}"]
    for path in paths:
        with open(path, "w") as fh:
            fh.write(secret + "\n")
        os.chmod(path, 0o644)
    yield secret, paths
    for path in paths:
        os.unlink(path)


def test_canary_secrets_never_reach_the_program(canaries):
    secret, paths = canaries
    code = f"""
import os
print('env', dict(os.environ), flush=True)
for pid in [p for p in os.listdir('/proc') if p.isdigit()] + ['self']:
    for name in ('environ', 'cmdline'):
        try:
            print(pid, name, open(f'/proc/{{pid}}/{{name}}', 'rb').read())
        except OSError as exc:
            print(pid, name, 'error', exc)
for path in {paths!r} + ['/root', '{PROJECT}', '/work', '/etc/passwd', '/home']:
    try:
        print(path, open(path).read())
    except OSError as exc:
        print(path, 'error', type(exc).__name__)
seen = 0
for root, dirs, files in os.walk('/'):
    if root.startswith(('/proc', '/sys')):
        dirs[:] = []
        continue
    for f in files:
        path = os.path.join(root, f)
        if not os.path.isfile(path) or root.startswith('/dev'):
            continue
        try:
            with open(path, 'rb') as fh:
                data = fh.read(2**20)
                seen += 1
                if b'CANA' + b'RY-' in data:  # split: this source itself is walked too
                    print('found in', root, f, data[:200])
        except OSError:
            pass
print('files read', seen)
"""
    result = run_python({"main.py": code}, limits=SandboxLimits(timeout=60))
    output = result.stdout + result.stderr
    assert result.exit_code == 0, result.stderr[-2000:]
    assert b"1 environ b'PATH=/usr/bin:/bin\\x00" in result.stdout  # /proc/1/environ was readable
    assert b"files read" in result.stdout and int(result.stdout.split(b"files read")[1]) > 100
    assert secret.encode() not in output
    assert b"found in" not in output
    assert_next_run_clean()


# --- network ---------------------------------------------------------------------------------------


def test_loopback_services_and_the_outside_are_unreachable(redis_server, postgres_server):
    targets = [("127.0.0.1", redis_server.port), ("127.0.0.1", postgres_server.port),
               ("1.1.1.1", 53), ("8.8.8.8", 443)]
    for host, port in targets[:2]:  # the services really are there, seen from the host
        socket.create_connection((host, port), timeout=5).close()
    code = f"""
import socket
for host, port in {targets!r}:
    try:
        s = socket.create_connection((host, port), timeout=3)
        s.sendall(b'PING\\r\\n')
        print('CONNECTED', host, port, s.recv(100))
    except OSError as exc:
        print('refused', host, port, exc.errno)
try:
    print('RESOLVED', socket.getaddrinfo('example.com', 80))
except OSError as exc:
    print('no dns', exc.errno)
print('interfaces', [name for _, name in socket.if_nameindex()])
"""
    result = run_python({"main.py": code}, limits=SandboxLimits(timeout=30))
    out = result.stdout.decode()
    assert "CONNECTED" not in out and "RESOLVED" not in out and "PONG" not in out
    assert out.count("refused") == len(targets), out
    assert "interfaces ['lo']" in out
    verdict = judge_stdio(code, [("", "CONNECTED")], timeout=30)
    assert not verdict.passed
    assert_next_run_clean()


# --- signals ---------------------------------------------------------------------------------------


def test_kill_minus_one_leaves_the_judge_and_host_processes_alive(redis_server):
    bystanders = [subprocess.Popen(["sleep", "60"]),
                  subprocess.Popen(["sleep", "60"], user=NOBODY, group=NOBODY, extra_groups=[])]
    try:
        code = ("import os, signal\n"
                "for sig in (signal.SIGKILL, signal.SIGTERM):\n"
                "    try:\n"
                "        os.kill(-1, sig)\n"
                "    except OSError as exc:\n"
                "        print('kill -1', exc.errno)\n"
                "for pid in range(1, 100000):\n"
                "    try:\n"
                "        os.kill(pid, signal.SIGKILL)\n"
                "    except OSError:\n"
                "        pass\n"
                "print('survived')\n")
        verdict = judge_stdio(code, [("", "survived")], timeout=20)
        assert verdict.status in ("runtime_error", "failed", "passed", "timeout")
        assert all(p.poll() is None for p in bystanders)
        assert redis_server.proc.poll() is None
        socket.create_connection(("127.0.0.1", redis_server.port), timeout=5).close()
        assert os.getppid() > 0  # and this test process is obviously still here
        assert_next_run_clean()
    finally:
        for p in bystanders:
            p.kill()
            p.wait()


# --- reward hacks against the judge ------------------------------------------------------------------

TESTS = ("def check(candidate):\n"
         "    assert abs(candidate(2, 3) - 5) < 1e-9\n"
         "    assert abs(candidate(1, 1) - 2) < 1e-9\n")
WRONG = "def add(a, b):\n    return a * b\n"
HACKS = {
    "sys_exit_0_at_import": WRONG + "import sys\nsys.exit(0)\n",
    "os_exit_0_at_import": WRONG + "import os\nos._exit(0)\n",
    "sys_exit_0_inside_candidate": "def add(a, b):\n    import sys\n    sys.exit(0)\n",
    "raise_at_import": WRONG + "raise SystemError('not today')\n",
    "replace_check_in_main": WRONG + "import sys\nsys.modules['__main__'].check = lambda c: None\n",
    "define_check": WRONG + "def check(candidate):\n    pass\n",
    "patch_builtins_abs": WRONG + "import builtins\nbuiltins.abs = lambda x: 0\n",
    "shadow_abs_global": WRONG + "abs = lambda x: 0\n",
    "always_equal": ("class Yes(float):\n    def __eq__(self, other): return True\n"
                     "    def __sub__(self, other): return 0\n"
                     "def add(a, b):\n    return Yes(0)\n"),
    "always_equal_object": ("class Yes:\n    def __eq__(self, o): return True\n    def __sub__(self, o): return 0\n"
                            "def add(a, b):\n    return Yes()\n"),
    "print_hex_tokens_from_own_files": (
        WRONG + "import os, re\nfor f in os.listdir('/sandbox'):\n"
        "    for tok in re.findall(r'[0-9a-f]{32}', open('/sandbox/' + f).read()):\n"
        "        print(tok)\nos._exit(0)\n"),
    "patch_assertion_via_trace": (
        WRONG + "import sys\ndef tracer(frame, event, arg):\n"
        "    if event == 'call' and frame.f_code.co_name == 'check':\n"
        "        raise SystemExit(0)\n    return None\nsys.settrace(tracer)\n"),
}


# Hacks that do fool a naive judge (everything in one module, `check(add)` last, exit 0 = pass).
FOOLS_NAIVE_JUDGE = {"sys_exit_0_at_import", "os_exit_0_at_import", "sys_exit_0_inside_candidate",
                     "patch_builtins_abs", "shadow_abs_global", "always_equal", "always_equal_object",
                     "print_hex_tokens_from_own_files", "patch_assertion_via_trace"}


def naive_judge_passes(code: str) -> bool:
    program = code + "\n" + TESTS + "\ncheck(add)\n"
    return run_python({"main.py": program}, limits=SandboxLimits(timeout=10)).exit_code == 0


@pytest.mark.parametrize("name", sorted(HACKS))
def test_reward_hacks_never_pass_a_function_test(name):
    verdict = judge_function(HACKS[name], TESTS, "add", timeout=10)
    assert not verdict.passed, (name, verdict.detail, verdict.stdout)
    assert verdict.status != "sandbox_error"
    # The hack is real: the naive judge would have scored it a pass.
    assert naive_judge_passes(HACKS[name]) == (name in FOOLS_NAIVE_JUDGE)


def test_a_correct_solution_still_passes_the_same_tests():
    assert judge_function("def add(a, b):\n    return a + b\n", TESTS, "add").passed


def test_printing_only_a_prefix_of_the_expected_output_fails():
    cases = [("", "1\n2\n3\n")]
    assert judge_stdio("print(1)\nprint(2)\n", cases).status == "failed"
    assert judge_stdio("print(1)\nprint(2)\nprint(3)\n", cases).passed


def test_a_forged_bwrap_error_is_not_a_sandbox_error():
    code = "import sys\nsys.stderr.write('bwrap: Creating new namespace failed\\n')\nsys.exit(1)\n"
    verdict = judge_stdio(code, [("", "42")])
    assert verdict.status == "runtime_error"
