"""A small seccomp filter, written as classic BPF by hand (no libseccomp needed).

It denies (EPERM) the few system calls that escape our rlimits or widen the kernel surface, and
allows everything else:
- SysV shared memory (shmget/shmat/shmctl): a segment outlives the process that touched it and
  is not counted by RLIMIT_AS, so a loop of get/attach/touch/detach could hoard host memory;
- memfd_create: anonymous files are bounded only per file (RLIMIT_FSIZE), not in total;
- io_uring, bpf, perf_event_open, userfaultfd, keyctl/add_key/request_key: large kernel attack
  surface that no judged program needs;
- on x86_64, every x32-ABI call (numbers with bit 30 set), so the table cannot be sidestepped.
A call from any other architecture (e.g. i386 via int 0x80) kills the process.

bwrap installs the program with `--seccomp FD` just before it execs our bootstrap.
"""

from __future__ import annotations

import errno
import platform
import struct

# <linux/audit.h>
_AUDIT_ARCH = {"x86_64": 0xC000003E, "aarch64": 0xC00000B7}

# Denied system calls by name, numbered per architecture (<asm/unistd.h>).
DENIED = ("shmget", "shmat", "shmctl", "memfd_create", "io_uring_setup", "io_uring_enter",
          "io_uring_register", "bpf", "perf_event_open", "userfaultfd", "add_key", "request_key",
          "keyctl")
_NUMBERS = {
    "x86_64": {"shmget": 29, "shmat": 30, "shmctl": 31, "memfd_create": 319, "io_uring_setup": 425,
               "io_uring_enter": 426, "io_uring_register": 427, "bpf": 321, "perf_event_open": 298,
               "userfaultfd": 323, "add_key": 248, "request_key": 249, "keyctl": 250},
    "aarch64": {"shmget": 194, "shmat": 196, "shmctl": 195, "memfd_create": 279, "io_uring_setup": 425,
                "io_uring_enter": 426, "io_uring_register": 427, "bpf": 280, "perf_event_open": 241,
                "userfaultfd": 282, "add_key": 217, "request_key": 218, "keyctl": 219},
}
_X32_SYSCALL_BIT = 0x40000000

# <linux/filter.h>, <linux/seccomp.h>
_LD_W_ABS = 0x20
_JEQ_K = 0x15
_JGE_K = 0x35
_RET_K = 0x06
_RET_ALLOW = 0x7FFF0000
_RET_KILL_PROCESS = 0x80000000
_RET_ERRNO = 0x00050000
_OFFSET_NR = 0
_OFFSET_ARCH = 4


def _insn(code: int, jt: int, jf: int, k: int) -> bytes:
    return struct.pack("=HBBI", code, jt, jf, k)


def supported(machine: str | None = None) -> bool:
    return (machine or platform.machine()) in _NUMBERS


def filter_program(machine: str | None = None) -> bytes:
    """The BPF program (an array of struct sock_filter) for this machine's architecture."""
    machine = machine or platform.machine()
    if machine not in _NUMBERS:
        raise ValueError(f"machine: no seccomp table for {machine!r} (known: {sorted(_NUMBERS)})")
    numbers = [_NUMBERS[machine][name] for name in DENIED]
    deny = _RET_ERRNO | errno.EPERM
    prog = [
        _insn(_LD_W_ABS, 0, 0, _OFFSET_ARCH),
        _insn(_JEQ_K, 1, 0, _AUDIT_ARCH[machine]),
        _insn(_RET_K, 0, 0, _RET_KILL_PROCESS),
        _insn(_LD_W_ABS, 0, 0, _OFFSET_NR),
    ]
    checks = []
    if machine == "x86_64":
        checks.append((_JGE_K, _X32_SYSCALL_BIT))
    checks.extend((_JEQ_K, nr) for nr in numbers)
    for i, (op, k) in enumerate(checks):
        # On a match jump over the remaining checks and the ALLOW, landing on the deny.
        prog.append(_insn(op, len(checks) - i, 0, k))
    prog.append(_insn(_RET_K, 0, 0, _RET_ALLOW))
    prog.append(_insn(_RET_K, 0, 0, deny))
    return b"".join(prog)
