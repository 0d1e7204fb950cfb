"""Read a run's TensorBoard event files back: every scalar and every histogram, none dropped.

TensorBoard's `EventAccumulator` keeps by default 1 histogram per tag and 10,000 scalars per tag
(reservoir sampling); a `size_guidance` of 0 keeps them all. A run may hold several event files (a
resumed run writes a new one): see `read_run_events` for how they are merged.

A file that is not a valid event file (e.g. random bytes) yields no events; its framing is checked
first so that it is reported as unreadable instead of being silently empty. A partial last record
(a job still writing) is normal and only noted at debug level.
"""

from __future__ import annotations

import logging
import struct
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from rnn_gradients import contract

log = logging.getLogger(__name__)

EVENT_FILE_GLOB = "events.out.tfevents.*"
SIZE_GUIDANCE = {"scalars": 0, "histograms": 0, "images": 0, "tensors": 0, "audio": 0, "compressedHistograms": 0}


@dataclass
class Histogram:
    """One histogram as TensorBoard stores it: bucket i spans (edges[i], edges[i + 1]]."""

    step: int
    wall_time: float
    min: float
    max: float
    num: float
    edges: np.ndarray  # (B + 1,) left edge of bucket 0 (= min), then the bucket limits, clipped to [min, max]
    counts: np.ndarray  # (B,)


@dataclass
class RunEvents:
    """Scalars as (steps, values) arrays sorted by step; histograms as lists sorted by step."""

    scalars: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    scalar_walls: dict[str, np.ndarray] = field(default_factory=dict)  # wall time of each kept scalar
    histograms: dict[str, list[Histogram]] = field(default_factory=dict)
    files: list[str] = field(default_factory=list)  # event files read
    unreadable: list[str] = field(default_factory=list)  # event files skipped
    problems: list[str] = field(default_factory=list)  # one message per skipped or damaged file

    def scalar(self, tag: str) -> tuple[np.ndarray, np.ndarray] | None:
        return self.scalars.get(tag)

    @property
    def last_step(self) -> int | None:
        steps = [int(s[-1]) for s, _ in self.scalars.values() if len(s)]
        return max(steps) if steps else None


def check_framing(path: Path) -> tuple[int, str]:
    """Walk the TFRecord framing of an event file, checking each record's header CRC.

    Returns (number of complete records, state) with state 'ok', 'truncated' (the last record is
    incomplete: a job still writing) or 'corrupt at byte N'.
    """
    from tensorboard.compat.tensorflow_stub.pywrap_tensorflow import masked_crc32c

    size = path.stat().st_size
    records, pos = 0, 0
    with path.open("rb") as f:
        while pos < size:
            header = f.read(12)
            if len(header) < 12:
                return records, "truncated"
            (length,) = struct.unpack("<Q", header[:8])
            (crc,) = struct.unpack("<I", header[8:])
            if masked_crc32c(header[:8]) != crc:
                return records, f"corrupt at byte {pos}"
            end = pos + 12 + length + 4
            if end > size:
                return records, "truncated"
            f.seek(end)
            pos, records = end, records + 1
    return records, "ok"


def _histogram(event) -> Histogram:
    h = event.histogram_value
    lo, hi = float(h.min), float(h.max)
    limits = np.asarray(h.bucket_limit, dtype=float)
    counts = np.asarray(h.bucket, dtype=float)
    edges = np.concatenate([[lo], limits])
    if len(edges) > 1 and np.isfinite(lo) and np.isfinite(hi) and hi >= lo:
        # TensorFlow-style limits can be +-DBL_MAX at the ends: the data lie within [min, max].
        edges = np.clip(edges, lo, hi)
        edges[-1] = max(edges[-1], hi)
    edges = np.maximum.accumulate(edges)
    return Histogram(int(event.step), float(event.wall_time), lo, hi, float(h.num), edges, counts)


def _accumulate(path: Path, result: RunEvents, tags: Collection[str] | None = None) -> None:
    """Add every scalar and histogram (of `tags`, if given) that an EventAccumulator reads from `path`
    (a file, or a folder: all its event files in name order) to `result`."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    accumulator = EventAccumulator(str(path), size_guidance=SIZE_GUIDANCE)
    accumulator.Reload()
    available = accumulator.Tags()
    wanted = (lambda tag: True) if tags is None else (lambda tag: tag in tags)
    for tag in filter(wanted, available.get("scalars", [])):
        events = accumulator.Scalars(tag)
        parts = [(np.array([e.step for e in events], dtype=np.int64), np.array([e.value for e in events], dtype=float),
                  np.array([e.wall_time for e in events], dtype=float))]
        if tag in result.scalars:
            parts.append((*result.scalars[tag], result.scalar_walls[tag]))
        steps, values, walls = _dedupe(*(np.concatenate(arrays) for arrays in zip(*parts)))
        result.scalars[tag], result.scalar_walls[tag] = (steps, values), walls
    for tag in filter(wanted, available.get("histograms", [])):
        hists = result.histograms.get(tag, []) + [_histogram(e) for e in accumulator.Histograms(tag)]
        hists.sort(key=lambda h: (h.step, h.wall_time))
        result.histograms[tag] = list({h.step: h for h in hists}.values())  # the later write of a step wins


def _check_file(path: Path, result: RunEvents) -> bool:
    """Framing check of one event file; records problems in `result`. False: skip the file."""
    try:
        records, state = check_framing(path)
    except OSError as error:
        result.unreadable.append(str(path))
        result.problems.append(f"skipped unreadable event file {path}: cannot read ({error})")
        return False
    if records == 0 and state.startswith("corrupt"):
        result.unreadable.append(str(path))
        result.problems.append(f"skipped unreadable event file {path}: not a TensorBoard event file ({state})")
        return False
    if state.startswith("corrupt"):
        result.problems.append(f"event file {path}: {state} after {records} records; using the records before it")
    elif state == "truncated":
        log.debug("%s: last record incomplete (still being written?)", path)
    result.files.append(str(path))
    return True


def _dedupe(steps: np.ndarray, values: np.ndarray, walls: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sort by (step, wall time); keep the last write of each step."""
    order = np.lexsort((walls, steps))
    steps, values, walls = steps[order], values[order], walls[order]
    if len(steps) == 0:
        return steps, values, walls
    keep = np.append(steps[1:] != steps[:-1], True)
    return steps[keep], values[keep], walls[keep]


def find_event_files(run_dir: Path) -> list[Path]:
    """Event files of a run: under its TensorBoard folder (any depth), else anywhere in the run folder."""
    run_dir = Path(run_dir)
    if run_dir.is_file():
        return [run_dir]
    tb = run_dir / contract.TENSORBOARD_DIR
    root = tb if tb.is_dir() else run_dir
    return sorted(p for p in root.rglob(EVENT_FILE_GLOB) if p.is_file() and contract.HYDRA_DIR not in p.parts)


def read_run_events(run_dir: Path, tags: Collection[str] | None = None) -> RunEvents:
    """Every readable event file of a run, merged; only the scalar/histogram `tags` given (all if None).

    The files of one folder are read by one EventAccumulator, in name (= creation time) order, as
    TensorBoard reads them: a resumed run's purge_step (a SessionLog START) discards the events the
    interrupted run logged after its checkpoint. Folders are merged by step; at a step logged twice the
    later write wins. Unreadable files are listed in `.unreadable` and described in `.problems` (the
    caller logs them); they never stop the others from being read.
    """
    result = RunEvents()
    by_folder: dict[Path, list[Path]] = {}
    for path in find_event_files(run_dir):
        by_folder.setdefault(path.parent, []).append(path)
    for folder, paths in sorted(by_folder.items()):
        readable = [p for p in paths if _check_file(p, result)]
        if not readable:
            continue
        try:
            # The folder as a whole, so a purge in a later file applies to the earlier ones. The reader
            # yields nothing from an unreadable file (and stops a damaged one at its first bad record).
            _accumulate(folder, result, tags)
        except Exception as error:  # noqa: BLE001 - a parse failure skips this folder, not the run
            result.problems.append(f"skipped event files in {folder}: cannot parse ({type(error).__name__}: {error})")
    result.scalar_walls.clear()  # only needed while merging; a full-scale run has ~10^5 scalars per tag
    return result
