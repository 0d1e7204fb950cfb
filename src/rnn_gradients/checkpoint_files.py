"""Reading a checkpoint file without Lightning (torch only): what the command line checks before a run
resumes, and what `python -m rnn_gradients.evaluate` loads; importing Lightning would cost each of them
about 2 s."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

from rnn_gradients.rules import ConfigError


def load_checkpoint(path: Path, ckpt_path: str | None = None, key: str = "ckpt_path") -> dict[str, Any]:
    """The checkpoint a `ckpt_path` value names (`path`: the file it stands for, as 'last' stands for
    <run dir>/checkpoints/last.ckpt; default: ckpt_path is the path), read with weights_only=True: a file
    from a stranger cannot run code. A missing or unloadable file is a one-line ConfigError naming `key`."""
    import torch

    shown = str(path) if ckpt_path is None else ckpt_path
    if not Path(path).is_file():
        raise ConfigError(f"{key}={shown!r} is not allowed: there is no file {path} "
                          "(ckpt_path must be a .ckpt file, or 'last' with hydra.run.dir=<run dir>)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            checkpoint = torch.load(path, map_location="cpu", weights_only=True)
        int(checkpoint["global_step"])
        return checkpoint
    except Exception as error:  # unpickling refused, truncated file, not a checkpoint at all
        detail = (str(error).strip().splitlines() or [""])[0][:160]
        raise ConfigError(f"{key}={shown!r} is not allowed: {path} is not a loadable checkpoint "
                          f"({type(error).__name__}: {detail})") from None


def checkpoint_step(path: Path, ckpt_path: str | None = None) -> int:
    """The global step stored in the checkpoint (load_checkpoint's rules): the command line's check before
    launch and the job's own are this function, so both say the same."""
    return int(load_checkpoint(path, ckpt_path)["global_step"])
