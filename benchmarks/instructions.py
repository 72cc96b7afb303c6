"""Instructions executed by a region of Python code, counted by Valgrind's callgrind.

A count of instructions does not change with the load on the machine (other jobs, CPU frequency,
caches shared with them), so it can tell a 3 % change from the noise on a busy 2-core machine
where timings cannot. It is not a time: a cache miss counts as one instruction, and valgrind
emulates the CPU without some of its extensions (SHA-NI: a SHA-256 costs more instructions under
valgrind than its time on the machine suggests). Use it to compare two versions of the same code
path; confirm with the benchmark's timed figures when the machine is quiet.

Needs ``valgrind`` and a C compiler (``apt-get install -y valgrind gcc``): the region is
bracketed by callgrind's client requests, from a three-line helper compiled on first use.

A benchmark offers it like this::

    if args.instructions:                       # in the parent
        totals, printed = instructions.run(__file__, ["--child", ...])
    ...
    with instructions.region():                 # in the child, once per measured region
        for _ in range(n): work()

``run`` returns the instructions of each region, in the order the child ran them.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

_HELPER = r"""
#include <valgrind/callgrind.h>
void region_start(void) {
    CALLGRIND_START_INSTRUMENTATION; CALLGRIND_ZERO_STATS; CALLGRIND_TOGGLE_COLLECT;
}
void region_stop(void) {
    CALLGRIND_TOGGLE_COLLECT; CALLGRIND_DUMP_STATS; CALLGRIND_STOP_INSTRUMENTATION;
}
"""
_ENV = "STEPUP_BENCH_CALLGRIND_HELPER"
_lib: ctypes.CDLL | None = None


def _build_helper(folder: Path) -> Path:
    source, library = folder / "region.c", folder / "libregion.so"
    source.write_text(_HELPER)
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None or not Path("/usr/include/valgrind/callgrind.h").exists():
        raise SystemExit("--instructions needs valgrind and a C compiler (apt-get install -y "
                         "valgrind gcc)")  # fmt: skip
    subprocess.run([cc, "-O2", "-shared", "-fPIC", "-o", str(library), str(source)], check=True)
    return library


def run(script: str, argv: list[str]) -> tuple[list[int], str]:
    """Run ``python script *argv`` under callgrind: the instructions of each :func:`region`, in
    order, and what the script printed."""
    if shutil.which("valgrind") is None:
        raise SystemExit("--instructions needs valgrind (apt-get install -y valgrind)")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        here = str(Path(__file__).resolve().parent)
        path = os.pathsep.join(filter(None, [here, str(Path(here).parent),
                                             os.environ.get("PYTHONPATH")]))  # fmt: skip
        env = {**os.environ, _ENV: str(_build_helper(folder)), "PYTHONPATH": path}
        out = folder / "callgrind.out"
        child = subprocess.run(
            ["valgrind", "--tool=callgrind", "--instr-atstart=no", "--collect-atstart=no",
             f"--callgrind-out-file={out}", sys.executable, script, *argv],
            env=env, check=True, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        )  # fmt: skip
        dumps = sorted(folder.glob("callgrind.out.*"), key=lambda p: int(p.suffix[1:]))
        totals = []
        for dump in dumps:
            for line in dump.read_text().splitlines():
                if line.startswith(("totals:", "summary:")):
                    totals.append(int(line.split()[1]))
                    break
        return totals, child.stdout


@contextlib.contextmanager
def region() -> Iterator[None]:
    """Count the instructions of the block (only under :func:`run`; elsewhere it does nothing)."""
    global _lib
    path = os.environ.get(_ENV)
    if path is None:
        yield
        return
    if _lib is None:
        _lib = ctypes.CDLL(path)
    _lib.region_start()
    try:
        yield
    finally:
        _lib.region_stop()
