"""Medians, the least-squares line, counterbalanced order, and the rows of bench.json with their targets.
Pure Python: no torch, no Hydra."""

from __future__ import annotations

import statistics
from collections.abc import Callable, Mapping, Sequence
from typing import Any

# Targets: (comparison, value). Ratios are A / B of the row.
TARGETS = {
    "template_vs_plain": ("<=", 1.10),
    "observatory_overhead": ("<=", 1.05),
    "template_vs_plain_fresh": ("<=", 1.10),
    "observatory_overhead_fresh": ("<=", 1.05),
    "data_share": ("<=", 0.03),
    "sweep": (">=", 1.6),
    "gpu": ("<=", 1.10),
    "gpu_observatory_overhead": ("<=", 1.05),  # the CPU target of row 2
    "probe": ("<=", 1.25),
    "spectrum": ("<=", 0.01),  # issue 19: the recurrent spectrum's share of training  # issue 18: the stepped fused-layer probe / the unrolled twin it replaced
}


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def linear_fit(xs: Sequence[float], ys: Sequence[float]) -> tuple[float, float]:
    """Least-squares line y = intercept + slope * x; returns (slope, intercept)."""
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    sxx = sum((x - mx) ** 2 for x in xs)
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx
    return slope, my - slope * mx


def meets(op: str, value: float, target: float) -> bool:
    return value <= target if op == "<=" else value >= target


def counterbalanced(names: Sequence[Any], round_index: int) -> list[Any]:
    """A B C, C B A, A B C, ...: interleaved, and a linear drift in load cancels over pairs of rounds."""
    return list(names) if round_index % 2 == 0 else list(reversed(names))


def interleave(variants: Mapping[str, Callable[[], Any]], rounds: int) -> dict[str, list[Any]]:
    """`rounds` calls of every variant, whole calls alternating in counterbalanced order."""
    results: dict[str, list[Any]] = {name: [] for name in variants}
    for r in range(rounds):
        for name in counterbalanced(list(variants), r):
            results[name].append(variants[name]())
    return results


def side(label: str, samples: Sequence[float], unit: str) -> dict[str, Any]:
    return {"label": label, "unit": unit, "median": median(samples), "n": len(samples), "samples": list(samples)}


def ratio_row(
    row_id: str, group: str, title: str, a: dict[str, Any], b: dict[str, Any], details: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A judged row: the ratio of the medians of its two sides against the group's target."""
    op, target = TARGETS[group]
    ratio = a["median"] / b["median"]
    return {
        "id": row_id, "group": group, "title": title,
        "target": {"op": op, "value": target},
        "ratio": ratio,
        "status": "pass" if meets(op, ratio, target) else "fail",
        "a": a, "b": b, "details": details or {},
    }


def info_row(row_id: str, group: str, title: str, a: dict[str, Any], b: dict[str, Any] | None = None,
             details: dict[str, Any] | None = None) -> dict[str, Any]:
    """A row reported, not judged (with b, the ratio of the medians too)."""
    row = {"id": row_id, "group": group, "title": title, "target": None, "status": "info", "a": a,
           "details": details or {}}
    if b is not None:
        row["b"], row["ratio"] = b, a["median"] / b["median"]
    return row


def skip_row(row_id: str, group: str, title: str, reason: str) -> dict[str, Any]:
    op, target = TARGETS[group]
    return {"id": row_id, "group": group, "title": title, "target": {"op": op, "value": target},
            "status": "skipped", "reason": reason, "details": {}}


def error_row(row_id: str, group: str, title: str, error: BaseException) -> dict[str, Any]:
    return {"id": row_id, "group": group, "title": title, "target": None, "status": "error",
            "reason": f"{type(error).__name__}: {error}"[:2000], "details": {}}
