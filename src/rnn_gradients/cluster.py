"""What a run needs to know about the scheduler it runs under: its CPU share, whether SLURM restarted it,
and the signal submitit takes as "you are preempted / about to time out". Torch-free (the command line
and the launcher import it).
"""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Sequence

# SLURM states of a job that may still produce a result (squeue's long names).
SLURM_STATES_STILL_RUNNING = {"PENDING", "RUNNING", "CONFIGURING", "COMPLETING", "REQUEUED", "REQUEUE_FED", "REQUEUE_HOLD",
                              "RESIZING", "SUSPENDED", "SIGNALING", "STAGE_OUT", "PREEMPTED", "READY", "UNKNOWN", "STOPPED"}


def squeue_states(job_ids: Sequence[str]) -> dict[str, str] | None:
    """{job id (array tasks as <id>_<task>): state} of what squeue still knows of `job_ids` (a job it no
    longer lists left the controller's memory, MinJobAge after it ended); None when squeue fails."""
    cmd = ["squeue", "--noheader", "--array", "--states=all", "--format=%i|%T", f"--jobs={','.join(job_ids)}"]
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=60).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return dict(line.strip().split("|", 1) for line in out.splitlines() if "|" in line)


def restart_count() -> int:
    """How many times SLURM restarted this job (requeue, preemption, node failure, or submitit's own
    requeue after a preemption or time-limit signal); 0 outside SLURM."""
    try:
        return int(os.environ.get("SLURM_RESTART_COUNT", "0"))
    except ValueError:
        return 0


def in_slurm_job() -> bool:
    return "SLURM_JOB_ID" in os.environ


def submitit_preempt_signal() -> signal.Signals | None:
    """The signal submitit's job handler checkpoints and requeues on, when this process is a submitit
    SLURM job (submitit reads the same variable, USR2 by default); None otherwise."""
    if os.environ.get("SUBMITIT_EXECUTOR") != "slurm":
        return None
    name = os.environ.get("SUBMITIT_PREEMPT_SIGNAL", "USR2")
    return getattr(signal, name if name.startswith("SIG") else f"SIG{name}", None)


def cpu_allocation() -> tuple[int, str]:
    """Cores this process may use, and where that number comes from.

    The CPU affinity mask is what taskset, cgroups and SLURM's task/affinity plugin restrict; a SLURM node
    that does not pin CPUs (TaskPlugin=task/none) leaves the mask at every core, so the allocation
    (SLURM_CPUS_PER_TASK) caps it too.
    """
    cores = len(os.sched_getaffinity(0))
    allocated = os.environ.get("SLURM_CPUS_PER_TASK", "")
    if allocated.isdigit() and 0 < int(allocated) < cores:
        return int(allocated), f"SLURM_CPUS_PER_TASK={allocated}"
    return cores, "CPU affinity mask"
