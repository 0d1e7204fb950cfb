"""What a job prints through Lightning: the warnings that are noise here, and each Lightning message once.
Called by every job (run.train) and by the benchmark, in whichever process runs it."""

from __future__ import annotations

import logging
import warnings


def quiet_known_warnings() -> None:
    """Silence warnings that are noise here; called by every job, in whichever process runs it (a
    joblib worker never runs the command line's set-up)."""
    # Lightning's advice to add DataLoader workers does not apply to in-process vectorized generation.
    warnings.filterwarnings("ignore", ".*does not have many workers.*")
    warnings.filterwarnings("ignore", ".*`IterableDataset` has `__len__`.*")
    warnings.filterwarnings("ignore", ".*isinstance\\(treespec, LeafSpec\\).*")  # Lightning vs torch 2.13
    # Lightning's advice to run under `srun` whenever srun is on PATH: SLURM jobs here do (submitit's own srun).
    warnings.filterwarnings("ignore", ".*`srun` command is available on your system but is not used.*")


def log_lightning_once() -> None:
    """One console line per Lightning message, and that line in the run's train.log too.

    The `lightning` package prints its INFO lines through a console handler of its own. `lightning.pytorch`
    keeps them away from the root logger only when it is imported before logging is configured; the
    command line now imports it inside the job, after Hydra set up its handlers, so every line would
    reach the console twice (Lightning's handler and Hydra's). Where the root logger has handlers, the
    package's own console handler goes; Hydra's formatting and its train.log then carry the line.
    """
    if not logging.getLogger().hasHandlers():
        return
    package = logging.getLogger("lightning")
    for handler in list(package.handlers):
        if type(handler) is logging.StreamHandler:
            package.removeHandler(handler)
    logging.getLogger("lightning.pytorch.utilities.rank_zero").addFilter(_NoAdvertising())


class _NoAdvertising(logging.Filter):
    """Drops Lightning's "💡 Tip: ... litlogger" line, which every job printed: an advertisement, not a fact."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "litlogger" not in record.getMessage()
