"""The executor: what the sandbox is built from, refusal without bubblewrap, the unsafe mode."""

import dataclasses
import logging
import os
import subprocess
import sys

import pytest

from r1model.sandbox import executor
from r1model.sandbox.executor import SandboxLimits, SandboxUnavailable, bwrap_argv, run_python
from r1model.sandbox.interpreter import find_interpreter
from r1model.sandbox.judge import judge_stdio

needs_bwrap = pytest.mark.skipif(not executor.sandbox_available(), reason="bubblewrap does not work here")
PROJECT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture
def no_bwrap(monkeypatch):
    """Pretend bubblewrap is not installed (and forget the cached probe before and after)."""
    executor._bwrap_works.cache_clear()
    monkeypatch.setattr(executor, "bwrap_path", lambda: None)
    yield
    executor._bwrap_works.cache_clear()


def test_sandbox_package_imports_neither_torch_nor_django():
    code = ("import sys, r1model.sandbox; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'django')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=PROJECT)
    assert out.stdout.strip() == "[]"


def test_interpreter_binds_only_the_interpreter_stdlib_and_libraries():
    interp = find_interpreter()
    sources = [src for src, _ in interp.ro_binds]
    assert interp.executable in sources
    for src in sources:
        assert not src.startswith(("/work", "/root", "/home", "/etc", PROJECT)), src
        assert src != "/usr" and src != "/"
    assert not any("site-packages" in s or "dist-packages" in s for s in sources)


def test_bwrap_command_unshares_everything_and_drops_privileges(tmp_path):
    argv = bwrap_argv(find_interpreter(), str(tmp_path), ["/sandbox/main.py"], SandboxLimits(), 9, 10)
    for flag in ("--unshare-all", "--unshare-user", "--disable-userns", "--die-with-parent",
                 "--new-session", "--clearenv", "--proc", "--dev"):
        assert flag in argv
    assert argv[argv.index("--cap-drop") + 1] == "ALL"
    assert "--share-net" not in argv and "--bind" not in argv and "--dev-bind" not in argv
    tmpfs = [argv[i + 1] for i, a in enumerate(argv) if a == "--tmpfs"]
    assert "/tmp" in tmpfs and "/dev/shm" in tmpfs
    sizes = [argv[i - 1] for i, a in enumerate(argv) if a == "--tmpfs" and argv[i + 1] in ("/tmp", "/dev/shm")]
    assert sizes == [str(SandboxLimits().tmpfs_bytes)] * 2 and argv[argv.index("--tmpfs") - 2] == "--size"


def test_missing_bwrap_refuses_with_a_clear_message(no_bwrap, monkeypatch):
    monkeypatch.delenv(executor.UNSAFE_ENV, raising=False)
    assert not executor.sandbox_available()
    with pytest.raises(SandboxUnavailable, match="bubblewrap .*not installed.*R1_SANDBOX_UNSAFE"):
        judge_stdio("print(1)", [("", "1")])


def test_unsafe_mode_runs_and_warns_on_every_use(no_bwrap, monkeypatch, caplog):
    monkeypatch.setenv(executor.UNSAFE_ENV, "1")
    monkeypatch.setenv("R1_TEST_SECRET", "should-not-leak")
    with caplog.at_level(logging.WARNING, logger="r1model.sandbox"):
        first = judge_stdio("import os\nprint(sorted(os.environ))", [("", "['LANG', 'PATH']")])
        second = judge_stdio("print(2)", [("", "3")])
    assert first.passed and first.detail.startswith("[UNSAFE")
    assert second.status == "failed"
    assert sum("UNSAFE" in r.getMessage() for r in caplog.records) == 2
    assert not executor.sandbox_available()  # unsafe mode is never reported as a sandbox


def test_unsafe_mode_still_applies_the_wall_clock_limit(no_bwrap, monkeypatch):
    monkeypatch.setenv(executor.UNSAFE_ENV, "1")
    assert judge_stdio("while True: pass", [("", "")], timeout=1).status == "timeout"


@needs_bwrap
def test_program_sees_only_its_files_a_clean_env_and_nobody():
    code = "import os\nprint(os.getuid(), sorted(os.environ), sorted(os.listdir('/sandbox')), os.getcwd())"
    result = run_python({"main.py": code, "data.txt": "x"})
    assert result.exit_code == 0, result.stderr
    uid, rest = result.stdout.decode().split(" ", 1)
    assert uid == "65534"
    assert rest.strip() == "['LANG', 'PATH'] ['data.txt', 'main.py'] /tmp"


@needs_bwrap
def test_program_files_are_read_only():
    result = run_python({"main.py": "open('/sandbox/main.py', 'w').write('x')"})
    assert result.exit_code == 1 and b"Read-only file system" in result.stderr


@needs_bwrap
def test_stdin_larger_than_a_pipe_buffer_is_fed_without_deadlock():
    data = b"7\n" * 200_000
    result = run_python({"main.py": "import sys\nprint(sum(map(int, sys.stdin)))"}, stdin=data)
    assert result.stdout.strip() == b"1400000"


@needs_bwrap
def test_file_names_are_checked():
    with pytest.raises(ValueError, match="files"):
        run_python({"main.py": "", "../x": ""})
    with pytest.raises(ValueError, match="main file"):
        run_python({"a.py": ""})


@needs_bwrap
def test_broken_sandbox_setup_is_a_sandbox_error_not_a_wrong_answer(monkeypatch):
    interp = find_interpreter()
    broken = dataclasses.replace(interp, ro_binds=interp.ro_binds + (("/nonexistent-r1-sandbox", "/x"),))
    monkeypatch.setattr(executor, "find_interpreter", lambda: broken)
    verdict = judge_stdio("print(1)", [("", "1")])
    assert verdict.status == "sandbox_error" and verdict.is_sandbox_error
    assert "nonexistent-r1-sandbox" in verdict.detail
