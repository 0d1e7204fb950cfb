"""What TensorBoard shows about a run as a whole: its HParams entry and the custom-scalars layout.

HParams: each run writes its hyperparameters (the session start) when it starts, and its outcome (the
metric scalars contract.HPARAM_METRICS and the session's end status) when it ends, diverges or is
interrupted, so the HParams tab of a multirun lists every job with real values, sortable and
filterable (Lightning writes only an `hp_metric: -1` placeholder). Custom scalars: one layout with the
thesis's three charts, the same in every run, so TensorBoard shows each chart once.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tensorboard.compat.proto.summary_pb2 import Summary
from tensorboard.plugins.hparams import metadata as hparams_metadata
from tensorboard.plugins.hparams.api_pb2 import Status
from tensorboard.plugins.hparams.plugin_data_pb2 import HParamsPluginData, SessionEndInfo
from torch.utils.tensorboard import SummaryWriter
from torch.utils.tensorboard.summary import hparams

from rnn_gradients import contract
from rnn_gradients.observatory.tensorboard_io import add_summary

END_STATUS = {contract.COMPLETED: "STATUS_SUCCESS", contract.DIVERGED: "STATUS_FAILURE",
              contract.INTERRUPTED: "STATUS_UNKNOWN", contract.FAILED: "STATUS_FAILURE"}


def hparam_values(description: Mapping[str, Any], cfg: Any) -> dict[str, float | str | bool]:
    """The run's hyperparameters as HParams values: numbers stay numbers (NaN where a key does not apply,
    e.g. the RNN's forget bias), so the HParams tab can sort and filter them."""
    values: dict[str, Any] = {**description, "num_layers": cfg.model.get("num_layers", 1), "init": cfg.model.get("init", "default")}
    out: dict[str, float | str | bool] = {}
    for key in contract.HPARAMS:
        value = values.get(key)
        if key in contract.NUMERIC_HPARAMS:
            out[key] = float("nan") if value is None else float(value)
        else:
            out[key] = "none" if value is None else str(value)
    return out


def custom_scalars_layout() -> dict[str, dict[str, list]]:
    """Four charts: clipping at work, the gradient through time at fixed t, the recurrent spectrum beside
    Pascanu et al.'s bound, and the loss."""
    return {
        "thesis": {
            "gradient norm: pre-clip, post-clip and the threshold (exploding = pre-clip spikes far above it)":
                ["Multiline", [contract.PRECLIP_NORM, contract.POSTCLIP_NORM, contract.CLIP_THRESHOLD]],
            "‖∂L/∂h_t‖ and ‖∂L/∂c_t‖ at fixed t (vanishing = the early t lines sit decades below the late ones)":
                ["Multiline", [rf"{contract.GRAD_FLOW}h_t\d+", rf"{contract.GRAD_FLOW}c_t\d+"]],
            "σ_max and spectral radius of each recurrent matrix, and its bound 1/γ (σ_max < 1/γ: vanishing guaranteed)":
                ["Multiline", [rf"{contract.SPECTRUM}.*"]],
            "normalized loss, train and validation (1 = the memoryless baseline)":
                ["Multiline", [contract.TRAIN_NORMALIZED_LOSS, contract.VAL_NORMALIZED_LOSS]],
        }
    }


def write_start(writer: SummaryWriter, values: Mapping[str, float | str | bool], step: int) -> None:
    """The experiment (which hparams and metrics exist), this session's hparams, and the layout."""
    experiment, session_start, _ = hparams(dict(values), {tag: 0.0 for tag in contract.HPARAM_METRICS})
    add_summary(writer, experiment, step)
    add_summary(writer, session_start, step)
    writer.add_custom_scalars(custom_scalars_layout())


def outcome_metrics(summary: Mapping[str, Any], published: Mapping[str, float]) -> dict[str, float]:
    """The HParams metric values of a finished (or stopped) run: from its summary, and `published` by
    callbacks ({tag: value}, callback_interfaces.HParamsMetrics: the log10 ratios, NaN without them)."""
    def number(value: Any) -> float:
        return float("nan") if value is None else float(value)

    metrics = {
        contract.HPARAM_VAL_NORMALIZED_LOSS: number(summary.get("val_normalized_loss")),
        contract.HPARAM_VAL_ACCURACY: number(summary.get("val_accuracy")),
        contract.HPARAM_DIVERGED: 1.0 if summary.get("diverged") else 0.0,
        contract.HPARAM_DIVERGED_AT_STEP: number(summary.get("diverged_at_step")),
        contract.HPARAM_STEPS: number(summary.get("steps")),
        contract.HPARAM_WALL_TIME_S: number(summary.get("wall_time_s")),
        contract.HPARAM_LOG10_RATIO_H: float("nan"),
        contract.HPARAM_LOG10_RATIO_C: float("nan"),
    }
    metrics.update({tag: number(value) for tag, value in published.items() if tag in metrics})
    return metrics


def write_end(writer: SummaryWriter, metrics: Mapping[str, float], status: str, step: int) -> None:
    """The metric values at the run's last step, and the session's end status."""
    for tag, value in metrics.items():
        writer.add_scalar(tag, value, step)
    add_summary(writer, session_end(status), step)
    writer.flush()


def session_end(status: str) -> Summary:
    """The HParams session-end record with the run's status. Neither summary API gives one with a status
    here: tensorboard's hparams `summary.session_end_pb` needs TensorFlow, `summary_v2` has no session end,
    torch's `hparams()` always says STATUS_SUCCESS; tensorboard's `create_summary_metadata` builds the rest."""
    end = SessionEndInfo(status=Status.Value(END_STATUS.get(status, "STATUS_UNKNOWN")))
    meta = hparams_metadata.create_summary_metadata(HParamsPluginData(session_end_info=end))
    return Summary(value=[Summary.Value(tag=hparams_metadata.SESSION_END_INFO_TAG, metadata=meta)])
