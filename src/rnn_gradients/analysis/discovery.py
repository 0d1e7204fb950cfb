"""Find the job folders of one or more sweeps.

A run (job) folder is a folder holding Hydra's record of the job (contract.HYDRA_DIR) or a summary file
(contract.SUMMARY_FILE) written by `rnn_gradients.train`. Folder names are never used to classify a run.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

from rnn_gradients import contract


def is_run_dir(path: Path) -> bool:
    if (path / contract.HYDRA_DIR).is_dir():
        return True
    summary = path / contract.SUMMARY_FILE
    if not summary.is_file():
        return False
    try:  # a bare summary file: only ours (an output folder of figures has no 'arm')
        data = json.loads(summary.read_text())
        return isinstance(data, dict) and "arm" in data and "status" in data
    except (OSError, ValueError):
        return True  # unreadable: still a run to count


def discover_run_dirs(paths: Sequence[Path | str], exclude: Iterable[Path] = ()) -> list[Path]:
    """Job folders under each path (a run folder, a sweep folder, or any parent of sweeps).

    Raises FileNotFoundError naming the first path that does not exist, NotADirectoryError for a file.
    Folders under `exclude` (e.g. the figures' own output folder) are not searched.
    """
    excluded = [Path(e).resolve() for e in exclude]
    found: dict[Path, None] = {}
    for raw in paths:
        root = Path(raw)
        if not root.exists():
            raise FileNotFoundError(f"path does not exist: {raw}")
        root = root.resolve()
        if root.is_file():
            raise NotADirectoryError(f"not a folder: {raw}")
        if is_run_dir(root):
            found[root] = None
            continue
        for current, dirs, _files in os.walk(root):
            here = Path(current)
            dirs[:] = sorted(d for d in dirs if d not in (contract.HYDRA_DIR, contract.TENSORBOARD_DIR)
                             and not d.startswith(".") and not any(_within(here / d, e) for e in excluded))
            if here != root and is_run_dir(here):
                found[here] = None
                dirs[:] = []  # a job folder holds no further jobs
    return sorted(found, key=_natural_key)


def _within(path: Path, parent: Path) -> bool:
    try:
        path.resolve().relative_to(parent)
        return True
    except ValueError:
        return False


def _natural_key(path: Path) -> tuple:
    return tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in path.parts)
