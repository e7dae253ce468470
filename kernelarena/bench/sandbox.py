"""What a solution's process may do: write only beneath its scratch folder and the build caches (Landlock), open
no internet sockets (seccomp), start in an empty working folder with nothing importable from it.

Every protection is best effort: where the kernel or the Python binding lacks it, the worker runs anyway and
the trace's ``environment.sandbox`` says which protections were active.
"""

from __future__ import annotations

import ctypes
import os
import platform
import struct
from pathlib import Path
from typing import Iterable, List

from .. import env

_PR_SET_NO_NEW_PRIVS = 38
_PR_SET_SECCOMP = 22
_SECCOMP_MODE_FILTER = 2
_RET_ALLOW = 0x7FFF0000
_RET_ERRNO = 0x00050000
_EPERM = 1
_AF_INET, _AF_INET6 = 2, 10
# (audit arch of the native ABI, socket syscall number, io_uring_setup syscall number)
_SYSCALLS = {"x86_64": (0xC000003E, 41, 425), "aarch64": (0xC00000B7, 198, 425)}
_X32_BIT = 0x40000000


def writable_dirs(scratch: Path) -> List[Path]:
    """Where a solution's process may write: its scratch folder, device files, and the compiler caches that
    builds share across processes (kernelarena's own, Triton's, torch extensions', the CUDA driver's)."""
    from ..build.toolchain import default_cache_root

    home = Path.home()
    dirs = [scratch, Path("/dev"), default_cache_root(), home / ".cache", home / ".triton", home / ".nv",
            home / ".tilelang"]
    environ = env.environment()  # Triton's and torch's own cache variables, where the user moved them
    for variable in ("TRITON_CACHE_DIR", "TORCH_EXTENSIONS_DIR"):
        if environ.get(variable):
            dirs.append(Path(environ[variable]))
    return dirs


def restrict_writes(dirs: Iterable[Path]) -> str:
    """Allow writes (create, write, truncate, remove, rename) only beneath ``dirs``, for this process and its
    children, through Landlock. Returns "active" or "unavailable: <why>"."""
    try:
        import landlock
        from landlock import FSAccess
    except ImportError:
        return "unavailable: the Python package 'landlock' is not installed"
    try:
        abi = landlock.landlock_abi_version()
        rights = (FSAccess.WRITE_FILE | FSAccess.REMOVE_DIR | FSAccess.REMOVE_FILE | FSAccess.MAKE_CHAR
                  | FSAccess.MAKE_DIR | FSAccess.MAKE_REG | FSAccess.MAKE_SOCK | FSAccess.MAKE_FIFO
                  | FSAccess.MAKE_BLOCK | FSAccess.MAKE_SYM)
        if abi >= 2:
            rights |= FSAccess.REFER
        if abi >= 3:
            rights |= FSAccess.TRUNCATE
        ruleset = landlock.Ruleset(restrict_rules=rights)
        for folder in dirs:
            folder.mkdir(parents=True, exist_ok=True)
            ruleset.allow(str(folder), rules=rights)
        ruleset.apply()
    except (OSError, landlock.LandlockError) as e:
        return f"unavailable: {e}"
    return f"active (ABI {abi})"


def block_internet() -> str:
    """Make socket(AF_INET/AF_INET6) and io_uring fail with EPERM in this process and every thread or child it
    starts later, through a seccomp filter. Returns "active" or "unavailable: <why>"."""
    machine = platform.machine()
    if machine not in _SYSCALLS:
        return f"unavailable: no syscall table for {machine}"
    arch, socket_nr, io_uring_nr = _SYSCALLS[machine]

    def op(code, k, jt=0, jf=0):
        return struct.pack("HBBI", code, jt, jf, k)

    ld_w_abs, jeq, jge, ret = 0x20, 0x15, 0x35, 0x06
    deny = _RET_ERRNO | _EPERM
    program = [
        op(ld_w_abs, 4),                      # seccomp_data.arch
        op(jeq, arch, 1, 0),
        op(ret, deny),                        # a foreign ABI (i386 int 0x80) could bypass the numbers below
        op(ld_w_abs, 0),                      # seccomp_data.nr
        op(jge, _X32_BIT, 0, 1),
        op(ret, deny),                        # x32 numbering
        op(jeq, io_uring_nr, 0, 1),
        op(ret, deny),                        # io_uring can open sockets without the socket syscall
        op(jeq, socket_nr, 0, 4),
        op(ld_w_abs, 16),                     # args[0], the address family (low 32 bits)
        op(jeq, _AF_INET, 1, 0),
        op(jeq, _AF_INET6, 0, 1),
        op(ret, deny),
        op(ret, _RET_ALLOW),
    ]
    code = b"".join(program)
    buffer = ctypes.create_string_buffer(code, len(code))

    class SockFprog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]

    prog = SockFprog(len(program), ctypes.cast(buffer, ctypes.c_void_p))
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        return f"unavailable: prctl(NO_NEW_PRIVS): {os.strerror(ctypes.get_errno())}"
    if libc.prctl(_PR_SET_SECCOMP, _SECCOMP_MODE_FILTER, ctypes.byref(prog), 0, 0) != 0:
        return f"unavailable: seccomp filter refused: {os.strerror(ctypes.get_errno())}"
    return "active"
