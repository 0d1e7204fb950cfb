"""The start-up row's Hydra job probe, kept free of torch: Hydra instantiates it in the command's parent
process before the job starts, and importing torch there would move the run's imports in front of the
very mark it takes."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback as HydraCallback
from omegaconf import DictConfig

from rnn_gradients.io_utils import write_json_atomic


class HydraJobProbe(HydraCallback):
    """Hydra callback (`+hydra.callbacks.bench_probe._target_=bench.probe_job_start.HydraJobProbe
    +hydra.callbacks.bench_probe.path=...`, scripts/ on PYTHONPATH): when the job starts, i.e. after the
    command line's imports, main()'s own checks, Hydra's composition and the creation of the run directory."""

    def __init__(self, path: str) -> None:
        self.path = Path(path)

    def on_job_start(self, config: DictConfig, **kwargs: Any) -> None:
        write_json_atomic(self.path, {"job_start": time.time()})
