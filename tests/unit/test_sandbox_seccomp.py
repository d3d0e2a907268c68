"""The hand-written seccomp filter: its shape, and that it denies what it lists inside the sandbox."""

import platform
import struct

import pytest

from r1model.sandbox import run_python, sandbox_available
from r1model.sandbox.executor import SandboxLimits
from r1model.sandbox.seccomp import DENIED, filter_program, supported


def instructions(program: bytes):
    return [struct.unpack("=HBBI", program[i:i + 8]) for i in range(0, len(program), 8)]


@pytest.mark.parametrize("machine", ["x86_64", "aarch64"])
def test_filter_checks_the_architecture_then_denies_each_listed_call(machine):
    insns = instructions(filter_program(machine))
    assert insns[0] == (0x20, 0, 0, 4)        # load arch
    assert insns[2] == (0x06, 0, 0, 0x80000000)  # other arch: kill
    assert insns[-2] == (0x06, 0, 0, 0x7FFF0000)  # default: allow
    assert insns[-1] == (0x06, 0, 0, 0x00050001)  # deny: EPERM
    checks = insns[4:-2]
    assert len(checks) == len(DENIED) + (1 if machine == "x86_64" else 0)
    for i, (_, jt, jf, _) in enumerate(checks):
        assert (jt, jf) == (len(checks) - i, 0)  # every match lands on the deny


def test_unknown_architecture_is_refused_by_name():
    assert not supported("sparc64")
    with pytest.raises(ValueError, match="sparc64"):
        filter_program("sparc64")


def test_limits_reject_non_positive_values_by_field_name():
    with pytest.raises(ValueError, match="SandboxLimits.memory_bytes"):
        SandboxLimits(memory_bytes=0)
    with pytest.raises(ValueError, match="SandboxLimits.timeout"):
        SandboxLimits(timeout=-1)


@pytest.mark.skipif(not sandbox_available() or platform.machine() != "x86_64",
                    reason="needs a working bubblewrap; the syscall numbers below are x86_64's")
def test_denied_calls_fail_with_eperm_and_ordinary_ones_work():
    code = """
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
for name, nr, args in [("shmget", 29, (0, 1 << 20, 0o1600)), ("memfd_create", 319, (b"x", 0)),
                       ("io_uring_setup", 425, (1, 0)), ("bpf", 321, (0, 0, 0)),
                       ("x32_getpid", 0x40000000 + 39, ()), ("getpid", 39, ())]:
    r = libc.syscall(nr, *args)
    print(name, "EPERM" if r < 0 and ctypes.get_errno() == 1 else "ok")
"""
    out = run_python({"main.py": code}).stdout.decode().split("\n")
    assert out[:6] == ["shmget EPERM", "memfd_create EPERM", "io_uring_setup EPERM", "bpf EPERM",
                       "x32_getpid EPERM", "getpid ok"]
