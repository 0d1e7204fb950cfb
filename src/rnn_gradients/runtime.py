"""Process-wide settings that decide how fast a run goes: threads, denormals, malloc, exit.

Each was measured (docs/benchmarks.md): denormal arithmetic made long LSTM steps 4-7x slower, glibc
returning freed activation buffers to the kernel cost ~35% of an LSTM step in page faults, two
OpenMP threads per job on a 2-core machine fight the other job of a sweep, and Python's final garbage
collection took 2 s of every process exit.
"""

from __future__ import annotations

import atexit
import ctypes
import ctypes.util
import gc
import logging

from hydra.core.hydra_config import HydraConfig
from omegaconf import OmegaConf

from rnn_gradients.cluster import cpu_allocation
from rnn_gradients.run_info import is_multirun

log = logging.getLogger(__name__)

# glibc mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3


_final_gc_skipped = False


def skip_final_gc() -> None:
    """Let this process exit without Python's final garbage collection (idempotent).

    Importing torch, Lightning and matplotlib leaves ~370k objects for the interpreter's last collection
    to walk: 2 s of every exit here, paid by each CLI command and each sweep worker. An atexit
    `gc.freeze()` puts them out of its reach. What is skipped is only the finalizers of cyclic garbage
    at exit; nothing here relies on them (TensorBoard writers and checkpoints are closed explicitly,
    logging flushes in its own atexit handler, which runs after this one).
    """
    global _final_gc_skipped
    if not _final_gc_skipped:
        atexit.register(gc.freeze)
        _final_gc_skipped = True


def thread_plan(requested: int) -> tuple[int, str]:
    """Torch threads for this process, and why that many (for the run's log line).

    0 = auto: the cores this job was given (cluster.cpu_allocation: the affinity mask, capped by
    SLURM_CPUS_PER_TASK) for a single run, divided by n_jobs for each job of a joblib sweep. An explicit
    number above the allocation is capped at it, on or off SLURM: oversubscribed OpenMP threads spin and
    slow every job (docs/benchmarks.md, "OpenMP and shared cores").
    """
    cores, source = cpu_allocation()
    if requested > 0:
        if requested > cores:
            where = source if source.startswith("SLURM") else f"the {source}"
            return cores, f"num_threads={requested} capped at the {cores} cores of {where}"
        return requested, f"num_threads={requested}"
    jobs = 1
    if is_multirun():
        n_jobs = OmegaConf.select(HydraConfig.get(), "launcher.n_jobs", default=1) or 1
        jobs = cores if n_jobs < 0 else n_jobs
    if jobs > 1:
        return max(1, cores // jobs), f"{source}: {cores} cores / {jobs} parallel jobs"
    return cores, source


def keep_freed_memory(megabytes: int) -> bool:
    """Ask glibc to keep up to `megabytes` of freed memory instead of giving it back to the kernel.

    By default a freed block above the mmap threshold is unmapped and a free heap top above the trim
    threshold is trimmed, so every training step page-faults its activation buffers in again (LSTM
    T=100: 7,300 faults and a third of the step). Raising both thresholds costs at most the run's peak
    heap. Returns whether it took effect (not on non-glibc systems, or with megabytes = 0).
    """
    if megabytes <= 0:
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        log.debug("no glibc mallopt here: keeping the allocator's defaults")
        return False
    size = megabytes * 1024 * 1024
    # mallopt returns 1 on success; glibc refuses thresholds above its limits (then nothing changes).
    return bool(mallopt(_M_MMAP_THRESHOLD, size)) & bool(mallopt(_M_TRIM_THRESHOLD, size))


def configure_cpu(num_threads: int, flush_denormal: bool, malloc_keep_mb: int) -> tuple[int, str]:
    """Apply the three settings for this process; returns the number of torch threads and why."""
    import torch  # here, not at the top: the command line imports this module without torch (train.py)

    threads, reason = thread_plan(num_threads)
    torch.set_num_threads(threads)
    # Vanishing gradients are denormals; the float64 gradient-flow probe stays far above them.
    torch.set_flush_denormal(flush_denormal)
    keep_freed_memory(malloc_keep_mb)
    return threads, reason
