"""What a job is, from Hydra's record of it (the run folder's contract.HYDRA_DIR): the classification
fields, for a job that never wrote its summary. config.yaml gives the composed config (interpolations
resolved where possible), hydra.yaml and overrides.yaml the config-group choices (experiment, optimizer)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rnn_gradients import contract

# Hydra's own file names inside the job's record.
CONFIG_YAML, HYDRA_YAML, OVERRIDES_YAML = "config.yaml", "hydra.yaml", "overrides.yaml"
GROUP_CHOICES = ("experiment", "optimizer")  # config groups whose chosen option classifies a run


def read_yaml(path: Path) -> Any:
    import yaml

    with path.open() as f:
        return yaml.safe_load(f)


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
    info = dict(
        task=_task_name(pick("data._target_")) or pick("data.name"), seq_len=pick("data.seq_len"),
        clipping=mode, clip_threshold=pick("clipping.threshold"), lr=pick("optimizer.lr"),
        forget_bias=pick("model.forget_bias"), hidden_size=pick("model.hidden_size"), seed=pick("seed"),
        max_steps=pick("trainer.max_steps"), optimizer=str(target).rsplit(".", 1)[-1].lower() if target else None,
    )
    cell = _cell(pick("model._target_"))
    model = pick("model") or {}
    if cell is not None:
        info["model"] = cell.name
        info["arm"] = contract.clipped_label(cell.arm_label(model), "none" if mode is None else str(mode))
    elif pick("model.cell") is not None:  # a run folder written before cells were plug-ins
        info["model"] = pick("model.cell")
        info["arm"] = contract.clipped_label(str(info["model"]).upper(), "none" if mode is None else str(mode))
    return info


def _cell(target: Any) -> Any:
    """The cell class a model._target_ names, or None where it cannot be imported here."""
    from rnn_gradients.cells import cell_class

    try:
        return cell_class(target)
    except ValueError:
        return None


def _task_name(target: Any) -> str | None:
    """The name of the task a data._target_ names, or None where it cannot be imported here."""
    from rnn_gradients.tasks import task_class

    try:
        return task_class(target).name
    except ValueError:
        return None
