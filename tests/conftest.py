"""Shared fixtures: Hydra-composed configs and a subprocess runner for the real CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

from rnn_gradients.paths import config_dir

# Small settings for every CLI run: a few seconds each on 2 CPU cores.
TINY = [
    "data.seq_len=10",
    "model.hidden_size=16",
    "trainer.max_steps=4",
    "trainer.val_check_interval=2",
    "trainer.log_every_n_steps=1",
    "data.val_size=32",
    "data.batch_size=8",
    "trainer.enable_progress_bar=false",
]


def compose_config(overrides: Sequence[str] = ()) -> DictConfig:
    """The config `python -m rnn_gradients.train <overrides>` would see (without the hydra node)."""
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        return compose(config_name="config", overrides=list(overrides))


@pytest.fixture
def compose_cfg() -> Callable[[Sequence[str]], DictConfig]:
    return compose_config


def cli_env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("HYDRA_FULL_ERROR", None)  # Hydra's default short errors, as a user sees them
    return env


def run_cli(args: Sequence[str], cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run `python -m rnn_gradients.train <args>` in `cwd`; stdout and stderr captured as text."""
    return subprocess.run(
        [sys.executable, "-m", "rnn_gradients.train", *args],
        cwd=cwd,
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture
def cli() -> Callable[..., subprocess.CompletedProcess]:
    return run_cli


def read_summary(run_dir: Path) -> dict:
    return json.loads((run_dir / "summary.json").read_text())
