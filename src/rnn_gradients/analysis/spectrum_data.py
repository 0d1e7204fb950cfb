"""The numbers of the recurrent-spectrum figure and tables, from the runs' spectrum files (spectrum_npz):
σ_max of each recurrent matrix beside its bound 1/γ (Pascanu et al. 2013: σ_max < 1/γ for every block
guarantees vanishing; σ_max > 1/γ for some block is necessary for exploding).

cures: per task (at the cures table's T, cures_data.cures_settings) and cell, over seeds, σ_max and the
    spectral radius of every block at initialization and at the last measurement, and per seed whether every
    block starts below its bound; the curves drawn are, per cell and per value of 1/γ, the max over the blocks
    with that bound (an LSTM: its tanh cell block against 1, the max of its three sigmoid gates against 4),
    median and min–max over seeds at every measured step.
exploding: the unclipped run of the exploding sweep that blows up (SGD first, a diverged run first, the
    largest lr) beside its norm-clipped twin (same optimizer, lr and seed): σ_max per block at every step, at
    step 0, at the first uphill step (loss_cliff_npz) and at the divergence (summary.json), and the first step
    where a block's σ_max exceeds its 1/γ.
Steps count as every tag does: step s = after s updates (the first uphill step s is the update from s−1 to s).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rnn_gradients import contract
from rnn_gradients.analysis.cliff_data import OPTIMIZER_PREFERENCE, sort_key_numeric
from rnn_gradients.analysis.cures_data import cures_runs, cures_settings
from rnn_gradients.analysis.divergence_rules import exploding_runs
from rnn_gradients.analysis.run_folder import Run
from rnn_gradients.analysis.seed_stats import aggregate_curves, median_of
from rnn_gradients.analysis.selection import arm_sort_key, cell_labels, first_seed, select, sort_key
from rnn_gradients.analysis.spectrum_npz import Spectrum, run_spectrum

TWIN_CLIPPING = "norm"  # the unclipped run's twin: norm clipping, the cure of Pascanu et al.


def _with_spectrum(runs: Sequence[Run]) -> list[tuple[Run, Spectrum]]:
    pairs = [(r, run_spectrum(r)) for r in runs]
    return [(r, s) for r, s in pairs if s is not None]


def _cell_spectrum(pairs: Sequence[tuple[Run, Spectrum]]) -> dict[str, Any]:
    """One cell's spectrum over its seeds: per block and max over blocks, init and end, plus the curves."""
    pairs = sorted(pairs, key=lambda p: sort_key(p[0].get("seed")))
    spectra = [s for _, s in pairs]
    first = spectra[0]
    init = [s for s in spectra if s.has_init]
    blocks = {}
    for m in first.matrices:
        have = [s for s in spectra if m in s.sigma_max]
        blocks[first.label(m)] = {
            "matrix": m, "bound": first.bound[m],
            "sigma_init": median_of([s.sigma_max[m][0] for s in init if m in s.sigma_max]),
            "sigma_end": median_of([s.sigma_max[m][-1] for s in have]),
            "radius_init": median_of([s.radius[m][0] for s in init if m in s.radius]),
            "n_below_bound_init": sum(s.below_bound(0)[m] for s in init if m in s.sigma_max),
        }
    curves = {}
    for bound, group in first.by_bound().items():
        agg = aggregate_curves([(s.steps, s.max_sigma(group)) for s in spectra])
        curves[bound] = {**agg, "blocks": [first.label(m) for m in group]}
    return {
        "seeds": [r.get("seed") for r, _ in pairs], "n_seeds": len(pairs), "n_init": len(init),
        "blocks": blocks,
        "max_sigma_init": median_of([s.max_sigma()[0] for s in init]),
        "max_sigma_end": median_of([s.max_sigma()[-1] for s in spectra]),
        "max_radius_init": median_of([max(s.radius[m][0] for m in s.matrices) for s in init]),
        # Pascanu et al.'s sufficient condition for vanishing, per seed: every block below its 1/γ at step 0
        "n_vanishing_guaranteed_init": sum(all(s.below_bound(0).values()) for s in init),
        "end_step": max(int(s.steps[-1]) for s in spectra),
        "curves": curves,
    }


def cures_spectrum_data(runs: Sequence[Run]) -> dict[str, Any]:
    """{task: {'seq_len', 'cells': {arm: _cell_spectrum(...)}}} of the cures runs with a spectrum file."""
    chosen = [r for r, _ in _with_spectrum(cures_runs(runs))]
    data: dict[str, Any] = {}
    for task, seq_len in cures_settings(chosen).items():
        group = _with_spectrum(select(chosen, task=task, seq_len=seq_len))
        arms = sorted({r.get("arm") for r, _ in group if r.get("arm") is not None}, key=arm_sort_key)
        cells = {arm: _cell_spectrum([(r, s) for r, s in group if r.get("arm") == arm]) for arm in arms}
        data[task] = {"seq_len": seq_len, "cells": cells}
    return data


def _unclipped_key(run: Run, twins: Sequence[Run]) -> tuple:
    """Which unclipped run to show, smallest first: the preferred optimizer, a diverged run, one with a twin,
    the largest lr, the smallest seed."""
    optimizer = run.get("optimizer")
    preferred = OPTIMIZER_PREFERENCE.index(optimizer) if optimizer in OPTIMIZER_PREFERENCE else len(OPTIMIZER_PREFERENCE)
    lr = sort_key_numeric(run.get("lr"))
    return (preferred, run.status != contract.DIVERGED, not twins, (-lr[0], -lr[1]), sort_key(run.get("seed")))


def _twins(run: Run, candidates: Sequence[Run]) -> list[Run]:
    return select(candidates, optimizer=run.get("optimizer"), lr=run.get("lr"), seed=run.get("seed"),
                  clipping=TWIN_CLIPPING)


def _at(spectrum: Spectrum, step: Any) -> dict[str, Any]:
    """σ_max per block (and their max) at the last measurement at or before `step`, and that step."""
    i = spectrum.index_at(step)
    if i is None:
        return {"step": None, "blocks": None, "max": None}
    blocks = {spectrum.label(m): float(v[i]) for m, v in spectrum.sigma_max.items()}
    return {"step": int(spectrum.steps[i]), "blocks": blocks, "max": max(blocks.values())}


def _run_spectrum_entry(run: Run, spectrum: Spectrum) -> dict[str, Any]:
    uphill = None if run.loss_cliff is None or run.loss_cliff.first_uphill is None else run.loss_cliff.first_uphill.step
    diverged_at = (run.summary or {}).get("diverged_at_step")
    return {
        "run": str(run.path), "seed": run.get("seed"), "clipping": run.get("clipping"),
        "diverged": run.status == contract.DIVERGED, "diverged_at_step": diverged_at, "first_uphill_step": uphill,
        "steps": spectrum.steps, "sigma_max": {spectrum.label(m): v for m, v in spectrum.sigma_max.items()},
        "bounds": {spectrum.label(m): spectrum.bound[m] for m in spectrum.matrices},
        "at_init": _at(spectrum, 0 if spectrum.has_init else None),
        "at_first_uphill": _at(spectrum, uphill),
        "at_divergence": _at(spectrum, diverged_at),
        "first_above_bound": {spectrum.label(m): spectrum.first_above_bound(m) for m in spectrum.matrices},
        "first_above_bound_any": spectrum.first_above_bound(),
        "end_step": int(spectrum.steps[-1]),
    }


def exploding_spectrum_data(runs: Sequence[Run]) -> dict[str, Any]:
    """{'optimizer', 'lr', 'seed', 'task', 'seq_len', 'cell', 'runs': {clipping: _run_spectrum_entry}}: the chosen
    unclipped exploding run and, when there is one, its norm-clipped twin; {} without an unclipped run with a
    spectrum file."""
    candidates = [r for r, _ in _with_spectrum(exploding_runs(runs))]
    unclipped = select(candidates, clipping="none")
    if not unclipped:
        return {}
    run = min(unclipped, key=lambda r: _unclipped_key(r, _twins(r, candidates)))
    chosen = [run] + [t for t in [first_seed(_twins(run, candidates))] if t is not None]
    return {"optimizer": run.get("optimizer"), "lr": run.get("lr"), "seed": run.get("seed"), "task": run.get("task"),
            "seq_len": run.get("seq_len"), "cell": cell_labels(chosen),
            "runs": {r.get("clipping"): _run_spectrum_entry(r, run_spectrum(r)) for r in chosen}}


def spectrum_data(runs: Sequence[Run]) -> dict[str, Any]:
    """Both parts of the figure: {'cures': cures_spectrum_data, 'exploding': exploding_spectrum_data}."""
    return {"cures": cures_spectrum_data(runs), "exploding": exploding_spectrum_data(runs)}


def spectrum_tables(runs: Sequence[Run]) -> dict[str, list[dict[str, Any]]]:
    """{'cures': one row per (task, cell, block) and, per gated cell, one row (block None) of the max over
    its blocks whose n_below_bound_init counts the seeds with every block below its 1/γ;
    'exploding': one row per (clipping, block) and one over all blocks per run} (no curves)."""
    data = spectrum_data(runs)
    cures = []
    for task, panel in data["cures"].items():
        for arm, cell in panel["cells"].items():
            base = {"task": task, "seq_len": panel["seq_len"], "arm": arm, "n_seeds": cell["n_seeds"],
                    "n_init": cell["n_init"], "end_step": cell["end_step"]}
            for block, b in cell["blocks"].items():
                cures.append({**base, "block": block, **{k: v for k, v in b.items() if k != "matrix"}})
            if len(cell["blocks"]) > 1:  # a gated cell: the max over its blocks, and the condition on all of them
                cures.append({**base, "block": None, "bound": None, "sigma_init": cell["max_sigma_init"],
                              "sigma_end": cell["max_sigma_end"], "radius_init": cell["max_radius_init"],
                              "n_below_bound_init": cell["n_vanishing_guaranteed_init"]})
    exploding = []
    pair = data["exploding"]
    for clipping, entry in pair.get("runs", {}).items():
        base = {"optimizer": pair["optimizer"], "lr": pair["lr"], "seed": entry["seed"], "clipping": clipping,
                "diverged_at_step": entry["diverged_at_step"], "first_uphill_step": entry["first_uphill_step"]}
        for block, bound in entry["bounds"].items():
            exploding.append({**base, "block": block, "bound": bound,
                              **{f"sigma_{w}": (entry[f"at_{w}"]["blocks"] or {}).get(block)
                                 for w in ("init", "first_uphill", "divergence")},
                              "first_above_bound": entry["first_above_bound"][block]})
        exploding.append({**base, "block": None, "bound": None,
                          **{f"sigma_{w}": entry[f"at_{w}"]["max"] for w in ("init", "first_uphill", "divergence")},
                          "first_above_bound": entry["first_above_bound_any"]})
    return {"cures": cures, "exploding": exploding}
