"""`hydra/sweeper=optuna`: a hyperparameter search with Optuna's ask/tell API, any launcher running the trials.

Ours, not Hydra's `hydra-optuna-sweeper`: its latest release (1.3.0) pins optuna<3, and optuna 2.10 with
today's SQLAlchemy 2 cannot open an SQLite study (`AssertionError` in `get_current_version`, measured
2026-12-04), the storage a search that outlives its launcher needs. The study lives in
`<sweep dir>/optuna.db`; the trial number is the Hydra job number, so the job folders of a continued
search go on from the last one and none is overwritten. Each trial is read from its job folder by the
reader the report uses (analysis.run_status): completed -> its objective; diverged -> `diverged_value`
(a bad trial, not a crash); failed, interrupted or missing -> a failed trial.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hydra.core.plugins import Plugins
from hydra.plugins.sweeper import Sweeper
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from rnn_gradients import contract, fail_fast, search_space, sweep_progress

# optuna and the run reader (numpy) load when a search starts: Hydra imports every plugin module on
# every command, so a top-level import would slow each `python -m rnn_gradients.train`.

if TYPE_CHECKING:
    import optuna

log = logging.getLogger(__name__)


def distribution(dim: search_space.Dimension) -> optuna.distributions.BaseDistribution:
    import optuna
    if dim.kind == "categorical":
        return optuna.distributions.CategoricalDistribution(dim.choices)
    if dim.kind == "int":
        return optuna.distributions.IntDistribution(dim.low, dim.high, log=dim.log, step=1 if dim.log else dim.step or 1)
    return optuna.distributions.FloatDistribution(dim.low, dim.high, log=dim.log, step=None if dim.log else dim.step)


def read_status(folder: Path | None) -> tuple[str, dict]:
    from rnn_gradients.analysis.run_status import read_run

    if folder is None:
        return contract.MISSING, {}
    record = read_run(folder)
    return record.status, record.summary or {}


def job_folder(sweep_dir: Path, number: int) -> Path | None:
    found = [p.parent for p in sweep_dir.glob(f"{number}_*/.hydra") if contract.job_number(p.parent.name) == number]
    return found[0] if found else None


class OptunaSweeper(Sweeper):
    def __init__(self, n_trials: int, n_jobs: int, direction: str, objective: str, diverged_value: float,
                 study_name: str, storage: str | None, sampler: Any, params: dict[str, str] | None) -> None:
        self.n_trials, self.n_jobs, self.direction, self.objective = n_trials, n_jobs, direction, objective
        self.diverged_value, self.study_name, self.storage = diverged_value, study_name, storage
        self.sampler_cfg, self.params = sampler, dict(params or {})  # a config: built in sweep() (_recursive_: false)

    def setup(self, *, hydra_context: Any, task_function: Any, config: DictConfig) -> None:
        self.config = config
        self.launcher = Plugins.instance().instantiate_launcher(hydra_context=hydra_context, task_function=task_function, config=config)

    def sweep(self, arguments: list[str]) -> None:
        import optuna

        optuna.logging.disable_default_handler()  # its messages through the job's logging, as Hydra set it up
        optuna.logging.enable_propagation()
        sweep_dir = Path(self.config.hydra.sweep.dir)
        sweep_dir.mkdir(parents=True, exist_ok=True)
        OmegaConf.save(self.config, sweep_dir / "multirun.yaml")
        space = {**self.params, **dict(arg.split("=", 1) for arg in arguments)}  # the command line's sweeps join the search
        dimensions, fixed = search_space.parse(space)
        distributions = {dim.key: distribution(dim) for dim in dimensions}
        storage = self.storage or f"sqlite:///{sweep_dir.resolve() / contract.SEARCH_STUDY}"
        study = optuna.create_study(study_name=self.study_name, storage=storage, direction=self.direction,
                                    load_if_exists=True)
        study.sampler = self.sampler(len(study.trials))
        self.unfinished(study, sweep_dir, fixed)
        first = len(study.trials)
        sweep_progress.save_plan(sweep_dir, [[] for _ in range(first + self.n_trials)])
        log.info("Study %r in %s: %d trials so far, %d to add", self.study_name, storage, first, self.n_trials)
        while len(study.trials) < first + self.n_trials and not fail_fast.stopped_by(sweep_dir):
            batch = [study.ask(distributions) for _ in range(min(self.n_jobs, first + self.n_trials - len(study.trials)))]
            self.run(study, sweep_dir, [(trial.number, [*fixed, *as_overrides(trial.params)]) for trial in batch])
        best = study.best_trial if any(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials) else None
        if best is not None:
            log.info("Best trial %d: %s = %g with %s", best.number, self.objective, best.value, best.params)

    def sampler(self, trials_so_far: int) -> optuna.samplers.BaseSampler:
        """The sampler of the config, its seed offset by the trials the study holds: a continued search
        samples new points (the same seed would repeat the first ones), and the same commands the same."""
        cfg = OmegaConf.to_container(self.sampler_cfg, resolve=True) if self.sampler_cfg is not None else None
        if isinstance(cfg, dict) and isinstance(cfg.get("seed"), int):
            cfg["seed"] += trials_so_far
        return instantiate(cfg) if cfg else None

    def unfinished(self, study: optuna.Study, sweep_dir: Path, fixed: list[str]) -> None:
        """Trials asked by a launcher that died before telling them: told from their job folder when the job
        ended since, else run again in their own folder (resume=true continues from its checkpoint)."""
        import optuna

        running = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,))
        for trial in running:
            if read_status(job_folder(sweep_dir, trial.number))[0] in (contract.COMPLETED, contract.DIVERGED):
                self.tell(study, sweep_dir, trial.number)
            else:
                log.info("Trial %d did not finish: running it again (resume=true)", trial.number)
                self.run(study, sweep_dir, [(trial.number, [*fixed, *as_overrides(trial.params), "resume=true"])])

    def run(self, study: optuna.Study, sweep_dir: Path, jobs: Sequence[tuple[int, list[str]]]) -> None:
        """Launch trials with consecutive numbers together (the launcher numbers jobs from the first)."""
        start = 0
        for end in range(1, len(jobs) + 1):
            if end == len(jobs) or jobs[end][0] != jobs[end - 1][0] + 1:
                group = jobs[start:end]
                self.launcher.launch([overrides for _, overrides in group], initial_job_idx=group[0][0])
                for number, _ in group:
                    self.tell(study, sweep_dir, number)
                start = end

    def tell(self, study: optuna.Study, sweep_dir: Path, number: int) -> None:
        import optuna

        status, summary = read_status(job_folder(sweep_dir, number))
        value = summary.get(self.objective)
        if status == contract.COMPLETED and isinstance(value, (int, float)):
            study.tell(number, float(value))
        elif status == contract.DIVERGED:
            study.tell(number, self.diverged_value)  # worse than a trial that learned nothing
        else:
            study.tell(number, state=optuna.trial.TrialState.FAIL)
        log.info("Trial %d: %s%s", number, status, f", {self.objective} = {value:.4g}" if status == contract.COMPLETED and value is not None else "")


def as_overrides(params: dict[str, Any]) -> list[str]:
    return [f"{key}={value!r}" if isinstance(value, float) else f"{key}={value}" for key, value in params.items()]
