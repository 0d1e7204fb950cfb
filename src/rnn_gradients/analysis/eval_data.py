"""What `python -m rnn_gradients.evaluate` wrote (eval.json), reduced over seeds: the normalized loss, the
task's metric and the log10 gradient ratios of each arm against the evaluated length, for the `eval` table
of summary.md and the length_generalization figure. Only each run's own final checkpoint on its own
validation set counts (a record made with --ckpt, --val-seed or --val-size is the user's own question).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rnn_gradients.analysis.seed_stats import summarize_values
from rnn_gradients.analysis.selection import arm_sort_key, sort_key


def length_table(runs: Sequence[Any]) -> list[dict[str, Any]]:
    """One row per (experiment, arm, task, trained T, evaluated T): medians and min–max over seeds."""
    groups: dict[tuple, list[dict[str, Any]]] = {}
    for run in runs:
        if not run.usable:
            continue
        for r in run.evaluations:
            key = (run.experiment, run.get("arm"), run.get("task"), r["trained_seq_len"], r["seq_len"])
            groups.setdefault(key, []).append(r)
    rows = []
    for (experiment, arm, task, trained, seq_len), records in sorted(
            groups.items(), key=lambda kv: (sort_key(kv[0][0]), sort_key(kv[0][2]), arm_sort_key(kv[0][1]), kv[0][3], kv[0][4])):
        loss = summarize_values([r["normalized_loss"] for r in records])
        ratios = {s: summarize_values([(r.get("log10_ratio") or {}).get(s) for r in records])["median"] for s in ("h", "c")}
        rows.append({"experiment": experiment, "arm": arm, "task": task, "trained_seq_len": trained, "seq_len": seq_len,
                     "n_seeds": len(records), "median_normalized_loss": loss["median"], "min_normalized_loss": loss["min"],
                     "max_normalized_loss": loss["max"], "metric_name": records[0].get("metric_name"),
                     "median_metric": summarize_values([r["metric"] for r in records])["median"],
                     "median_log10_ratio_h": ratios["h"], "median_log10_ratio_c": ratios["c"]})
    return rows


def length_generalization_data(runs: Sequence[Any]) -> dict[str, dict[str, dict[str, Any]]]:
    """{task: {arm: {'trained': [T...], 'points': {T: row}}}} from length_table."""
    data: dict[str, dict[str, dict[str, Any]]] = {}
    for row in length_table(runs):
        arm = data.setdefault(row["task"], {}).setdefault(row["arm"], {"trained": [], "points": {}})
        if row["trained_seq_len"] not in arm["trained"]:
            arm["trained"].append(row["trained_seq_len"])
        arm["points"].setdefault((row["trained_seq_len"], row["seq_len"]), row)
    return data
