"""What a job is, from Hydra's record of it (the run folder's contract.HYDRA_DIR): the classification
fields, for a job that never wrote its summary. config.yaml gives the composed config (interpolations
resolved where possible), hydra.yaml and overrides.yaml the config-group choices (experiment, optimizer).

The arm label is run_info.arm_label of that config, the function the job itself writes summary.json's
`arm` with (so an unfinished `arm=lstm_no_carry` job is 'LSTM (no cell carry)' here too), and the baseline
is the configured task's Task.baseline, the number the job writes as `baseline_loss`. Both are the cells'
and tasks' torch-free declarations (cells/base.py, tasks/base.py): reading a folder loads no torch.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from rnn_gradients import cells, contract, tasks

# Hydra's own file names inside the job's record.
CONFIG_YAML, HYDRA_YAML, OVERRIDES_YAML = "config.yaml", "hydra.yaml", "overrides.yaml"
GROUP_CHOICES = ("experiment", "optimizer")  # config groups whose chosen option classifies a run


def read_yaml(path: Path) -> Any:
    import yaml

    with path.open() as f:  # libyaml's loader where PyYAML has it: ~6x faster on a composed config
        return yaml.load(f, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))


def config_info(run_dir: Path) -> tuple[dict[str, Any], list[str]]:
    """(classification fields, problems): what the Hydra record says about the run; unreadable files are
    problems, never exceptions."""
    hydra_dir = Path(run_dir) / contract.HYDRA_DIR
    info: dict[str, Any] = {}
    problems: list[str] = []
    config_path = hydra_dir / CONFIG_YAML
    if config_path.is_file():
        try:
            info.update(_composed_config_info(read_yaml(config_path) or {}))
        except Exception as error:  # noqa: BLE001
            problems.append(f"{config_path}: unreadable ({type(error).__name__}: {error})")
    choices: dict[str, Any] = {}
    hydra_path = hydra_dir / HYDRA_YAML
    if hydra_path.is_file():
        try:
            choices = ((read_yaml(hydra_path) or {}).get("hydra", {}).get("runtime", {}) or {}).get("choices", {}) or {}
        except Exception as error:  # noqa: BLE001
            problems.append(f"{hydra_path}: unreadable ({type(error).__name__}: {error})")
    overrides_path = hydra_dir / OVERRIDES_YAML
    if overrides_path.is_file():
        try:
            for item in read_yaml(overrides_path) or []:
                key, _, value = str(item).partition("=")
                if key in GROUP_CHOICES and key not in choices:
                    choices[key] = value
        except Exception as error:  # noqa: BLE001
            problems.append(f"{overrides_path}: unreadable ({type(error).__name__}: {error})")
    for key in GROUP_CHOICES:
        if choices.get(key):
            info[key] = choices[key]
    return info, problems


def _composed_config_info(raw: Any) -> dict[str, Any]:
    from omegaconf import OmegaConf

    cfg = OmegaConf.create(raw)

    def pick(key: str) -> Any:
        try:
            return OmegaConf.select(cfg, key, default=None, throw_on_resolution_failure=False)
        except Exception:  # noqa: BLE001 - an unresolvable interpolation is just missing
            return None

    mode = pick("clipping.mode")
    target = pick("optimizer._target_")
    task = _task(pick("data._target_"), pick("data.name"))
    seq_len = pick("data.seq_len")
    info = dict(
        task=task.name if task is not None else pick("data.name"), seq_len=seq_len,
        clipping=mode, clip_threshold=pick("clipping.threshold"), lr=pick("optimizer.lr"),
        forget_bias=pick("model.forget_bias"), hidden_size=pick("model.hidden_size"), seed=pick("seed"),
        max_steps=pick("trainer.max_steps"), optimizer=str(target).rsplit(".", 1)[-1].lower() if target else None,
        baseline_loss=_baseline(task, seq_len),
    )
    if pick("model._target_") is not None:
        cell = _found(cells.cell_class, pick("model._target_"))
        if cell is not None:
            info["model"], info["arm"] = cell.name, _arm_label(cfg)
    elif pick("model.cell") is not None:  # a run folder written before cells were plug-ins: model.cell names it
        cell = _found(cells.by_name, str(pick("model.cell")))
        info["model"] = cell.name if cell is not None else str(pick("model.cell"))
        if cell is not None:
            clipping = "none" if mode is None else str(mode)
            info["arm"] = contract.clipped_label(cell.arm_label(pick("model") or {}), clipping)
    return info


def _arm_label(cfg: Any) -> str | None:
    """run_info.arm_label of the composed config (None where its model or clipping cannot be read)."""
    from rnn_gradients.run_info import arm_label

    try:
        return arm_label(cfg)
    except Exception:  # noqa: BLE001 - a config this package cannot label leaves the arm unknown
        return None


def _found(lookup: Callable[[Any], Any], key: Any) -> Any:
    """The cell or task class a `_target_` (or, in an old run folder, a name) names, or None where it cannot
    be found here (a user's plug-in not on the path)."""
    try:
        return lookup(key)
    except ValueError:  # rules.ConfigError for a _target_, ValueError for an unknown name
        return None


def _task(target: Any, name: Any) -> Any:
    if target is not None:
        return _found(tasks.task_class, target)
    return _found(tasks.by_name, str(name)) if name is not None else None


def _baseline(task: Any, seq_len: Any) -> float | None:
    """The task's memoryless baseline at seq_len (Task.baseline, a torch-free class method)."""
    try:
        return None if task is None or seq_len is None else float(task.baseline(int(seq_len)))
    except (TypeError, ValueError):
        return None
