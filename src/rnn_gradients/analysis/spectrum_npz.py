"""The recurrent spectrum a run keeps (contract.SPECTRUM_FILE, written by rnn_gradients.observatory's
spectrum logger): at each measured step, σ_max and the spectral radius of every recurrent matrix
`l<layer>_<block>` (one per gate block of a gated cell) and its bound 1/γ (Pascanu et al. 2013: σ_max < 1/γ
for every block guarantees vanishing; σ_max > 1/γ is necessary for exploding).

Every key is built from rnn_gradients.contract (SPECTRUM_STEPS, SPECTRUM_QUANTITIES, spectrum_key), so a
rename in the writer breaks this reader loudly, not silently.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from rnn_gradients import contract
from rnn_gradients.analysis.run_folder import Run

log = logging.getLogger(__name__)

SIGMA_MAX, RADIUS, BOUND = contract.SPECTRUM_QUANTITIES
# Relative margin of "below" and "above" 1/γ: an orthogonal (or identity) W_hh sits at σ_max = 1 = 1/γ up to
# float32 rounding (~1e-7), which must count as at the bound, neither side of it.
BOUND_TOLERANCE = 1e-6


@dataclass(frozen=True)
class Spectrum:
    """steps (n,); sigma_max[m], radius[m] (n,) per recurrent matrix m in the file's order; bound[m] = 1/γ of
    m (constant through training: the block's nonlinearity fixes it)."""

    steps: np.ndarray
    sigma_max: dict[str, np.ndarray]
    radius: dict[str, np.ndarray]
    bound: dict[str, float]

    @classmethod
    def load(cls, path: Path) -> Spectrum:
        """Read the file; a matrix missing one of its quantities, or an array of another length than the
        steps, is a damaged file (ValueError)."""
        with np.load(path, allow_pickle=False) as z:
            names = list(z.files)
            if contract.SPECTRUM_STEPS not in names:
                raise ValueError(f"no {contract.SPECTRUM_STEPS!r} array")
            steps = np.asarray(z[contract.SPECTRUM_STEPS], dtype=np.int64).reshape(-1)
            prefix = contract.spectrum_key(SIGMA_MAX, "")
            matrices = [n[len(prefix):] for n in names if n.startswith(prefix)]
            values: dict[str, dict[str, np.ndarray]] = {q: {} for q in contract.SPECTRUM_QUANTITIES}
            for matrix in matrices:
                for quantity in contract.SPECTRUM_QUANTITIES:
                    key = contract.spectrum_key(quantity, matrix)
                    if key not in names:
                        raise ValueError(f"{matrix}: no {key!r} array")
                    array = np.asarray(z[key], dtype=float).reshape(-1)
                    if array.shape != steps.shape:
                        raise ValueError(f"{key} has shape {array.shape}, steps {steps.shape}")
                    values[quantity][matrix] = array
        if not matrices or steps.size == 0:
            raise ValueError("no recurrent matrix measured")
        bound = {m: float(values[BOUND][m][0]) for m in matrices}
        return cls(steps, values[SIGMA_MAX], values[RADIUS], bound)

    @property
    def matrices(self) -> tuple[str, ...]:
        return tuple(self.sigma_max)

    @property
    def has_init(self) -> bool:
        """The first measurement is at step 0 (initialization)."""
        return int(self.steps[0]) == 0

    def label(self, matrix: str) -> str:
        """The block's name ('forget') when every matrix is of layer 0, else the matrix name ('l1_forget')."""
        single = all(m.split("_", 1)[0] == self.matrices[0].split("_", 1)[0] for m in self.matrices)
        return matrix.split("_", 1)[1] if single and "_" in matrix else matrix

    def index_at(self, step: int | None) -> int | None:
        """The index of the last measurement at or before `step` (the spectrum at that step when the logger
        measured it, as with the exploding sweep's every-step cadence); None before the first, or step None."""
        if step is None:
            return None
        i = int(np.searchsorted(self.steps, int(step), side="right")) - 1
        return i if i >= 0 else None

    def at(self, step: int | None) -> dict[str, float] | None:
        """σ_max of every matrix at index_at(step)."""
        i = self.index_at(step)
        return None if i is None else {m: float(v[i]) for m, v in self.sigma_max.items()}

    def max_sigma(self, matrices: tuple[str, ...] | None = None) -> np.ndarray:
        """σ_max per step, the max over `matrices` (all by default)."""
        return np.max(np.stack([self.sigma_max[m] for m in (matrices or self.matrices)]), axis=0)

    def below_bound(self, index: int) -> dict[str, bool]:
        """Per matrix: σ_max < 1/γ at measurement `index` (Pascanu et al.'s sufficient condition for vanishing),
        by more than BOUND_TOLERANCE."""
        return {m: bool(self.sigma_max[m][index] < self.bound[m] * (1 - BOUND_TOLERANCE)) for m in self.matrices}

    def first_above_bound(self, matrix: str | None = None) -> int | None:
        """The first measured step where σ_max of `matrix` (of any matrix when None) exceeds its 1/γ: from then
        on exploding is possible (by more than BOUND_TOLERANCE). None: never (within the measured steps)."""
        above = np.zeros(len(self.steps), dtype=bool)
        for m in (matrix,) if matrix else self.matrices:
            above |= self.sigma_max[m] > self.bound[m] * (1 + BOUND_TOLERANCE)
        hits = np.flatnonzero(above)
        return int(self.steps[hits[0]]) if hits.size else None

    def by_bound(self) -> dict[float, tuple[str, ...]]:
        """The matrices grouped by their 1/γ, smallest bound first (1: tanh/ReLU blocks; 4: sigmoid gates)."""
        groups: dict[float, list[str]] = {}
        for m in self.matrices:
            groups.setdefault(self.bound[m], []).append(m)
        return {b: tuple(groups[b]) for b in sorted(groups)}


def load_spectrum(run_dir: Path) -> Spectrum | None:
    """A run folder's spectrum; None when the file is absent, or damaged (logged as a warning: like the other
    files of a run, a damaged one is reported, never fatal)."""
    path = Path(run_dir) / contract.SPECTRUM_FILE
    if not path.is_file():
        return None
    stat = path.stat()
    return _cached(str(path), stat.st_mtime_ns, stat.st_size)


@lru_cache(maxsize=4096)
def _cached(path: str, mtime_ns: int, size: int) -> Spectrum | None:
    """One read (and one warning) per version of a file: the spectrum figure and the tables both ask."""
    try:
        return Spectrum.load(Path(path))
    except Exception as error:  # noqa: BLE001 - a damaged file is reported, not fatal
        log.warning("%s: unreadable (%s: %s)", path, type(error).__name__, error)
        return None


def run_spectrum(run: Run) -> Spectrum | None:
    """load_spectrum of a Run (Run does not carry it: only the spectrum figure and table read the file)."""
    return load_spectrum(run.path)
