"""Load every run under some folders: discover the job folders, read each one, then its event files.

Problems (an unreadable summary, config, grad-flow file or event file) are logged as warnings and kept
in `Run.problems`, never raised.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from functools import partial
from pathlib import Path

from rnn_gradients.analysis.discovery import discover_run_dirs
from rnn_gradients.analysis.event_files import read_run_events
from rnn_gradients.analysis.run_folder import Run, load_run

log = logging.getLogger(__name__)


class NoRunsError(Exception):
    """No usable run was found (the figures' command line turns this into exit code 2)."""


def load_events(runs: Sequence[Run], jobs: int = 1, tags: Collection[str] | None = None) -> None:
    """Read every run's event files (in `jobs` processes when > 1), keeping only `tags` (all if None:
    a full-profile sweep holds ~10^8 scalars); problems are logged as warnings."""
    todo = [r for r in runs if r.events is None]
    read = partial(read_run_events, tags=None if tags is None else frozenset(tags))
    if jobs > 1 and len(todo) > 1:
        with ProcessPoolExecutor(max_workers=jobs) as pool:
            results = list(pool.map(read, [r.path for r in todo], chunksize=1))
    else:
        results = [read(r.path) for r in todo]
    for run, events in zip(todo, results):
        run.events = events
        for problem in events.problems:
            log.warning("%s", problem)
        run.problems.extend(events.problems)


def load_runs(paths: Sequence[Path | str], exclude: Iterable[Path] = (), events: bool = True, jobs: int = 1,
              tags: Collection[str] | None = None, warn: bool = True) -> list[Run]:
    """Discover and load every run under `paths` (event files: only `tags`, all if None). Problems are
    logged as warnings (unless warn=False: see warn_problems), never raised."""
    runs = [load_run(d) for d in discover_run_dirs(paths, exclude=exclude)]
    if warn:
        warn_problems(runs)
    if events:
        load_events(runs, jobs=jobs, tags=tags)
    return runs


def warn_problems(runs: Sequence[Run]) -> None:
    for run in runs:
        for problem in run.problems:
            log.warning("%s", problem)
