"""Where the Hydra configs live, for both editable and regular installs."""

from __future__ import annotations

from pathlib import Path


def config_dir() -> Path:
    """`conf/` is shipped inside the wheel as rnn_gradients/conf; in a source checkout it is the
    repository's top-level conf/ (an editable install does not copy it)."""
    packaged = Path(__file__).resolve().parent / "conf"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parents[2] / "conf"
