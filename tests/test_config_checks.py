"""validate_config and check_group_choices on configs composed exactly as the CLI composes them."""

from __future__ import annotations

import pytest

from rnn_gradients.config_checks import ConfigError, check_group_choices, validate_config
from rnn_gradients.paths import config_dir


@pytest.mark.parametrize(
    "overrides,key,allowed",
    [
        (["data.seq_len=-5"], "data.seq_len", "an integer > 0"),
        (["data.seq_len=0"], "data.seq_len", "an integer > 0"),
        (["data=copy", "data.seq_len=0"], "data.seq_len", "an integer > 0"),
        (["data.seq_len=2.5"], "data.seq_len", "an integer > 0"),
        (["clipping=norm", "clipping.threshold=0"], "clipping.threshold", "a number > 0"),
        (["clipping=value", "clipping.threshold=-1"], "clipping.threshold", "a number > 0"),
        (["clipping=norm", "clipping.threshold=null"], "clipping.threshold", "a number > 0"),
        (["clipping.mode=l2"], "clipping.mode", "one of ['none', 'norm', 'value']"),
        (["model.hidden_size=0"], "model.hidden_size", "an integer > 0"),
        (["model.num_layers=0"], "model.num_layers", "an integer > 0"),
        (["optimizer.lr=0"], "optimizer.lr", "a number > 0"),
        (["optimizer=sgd", "optimizer.lr=-0.1"], "optimizer.lr", "a number > 0"),
        (["model.init=xavier"], "model.init", "one of ['default', 'orthogonal', 'spectral']"),
        (["model.spectral_radius=-1"], "model.spectral_radius", "a number > 0"),
        (["model.nonlinearity=sigmoid"], "model.nonlinearity", "one of ['tanh', 'relu']"),
        (["model.cell=gru"], "model.cell", "one of ['rnn', 'lstm']"),
        (["model.forget_bias=abc"], "model.forget_bias", "a finite number, or null"),
        (["data.batch_size=0"], "data.batch_size", "an integer > 0"),
        (["data.val_size=0"], "data.val_size", "an integer > 0"),
        (["trainer.max_steps=0"], "trainer.max_steps", "an integer > 0"),
        (["trainer.val_check_interval=0"], "trainer.val_check_interval", "an integer > 0"),
        (["seed=-1"], "seed", "an integer >= 0"),
        (["malloc_keep_mb=-1"], "malloc_keep_mb", "an integer >= 0"),
        (["progress_bar_refresh_rate=0"], "progress_bar_refresh_rate", "an integer > 0"),
        (["data=adding", "data.seq_len=1"], "data.seq_len", ">= 2"),
    ],
)
def test_bad_values_are_refused(compose_cfg, overrides, key, allowed):
    cfg = compose_cfg(overrides)
    with pytest.raises(ConfigError) as info:
        validate_config(cfg)
    message = str(info.value)
    assert key in message
    assert allowed in message
    assert "\n" not in message  # one line, printed as is
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize(
    "overrides",
    [
        [],
        ["model=rnn", "data=copy", "clipping=norm"],
        ["model=lstm", "clipping=value", "clipping.threshold=0.5", "optimizer=rmsprop"],
        ["arm=lstm_clip"],
        ["arm=rnn", "model.init=spectral", "model.spectral_radius=1.5", "model.nonlinearity=relu"],
        ["data=copy", "data.seq_len=1"],  # the copy task is fine with T=1
        ["data=adding", "data.seq_len=2"],
        ["model.forget_bias=null"],
        ["clipping=none"],  # threshold null is fine without clipping
    ],
)
def test_good_configs_pass(compose_cfg, overrides):
    assert validate_config(compose_cfg(overrides)) is None


def test_composed_defaults_are_what_the_docs_say(compose_cfg):
    """The groups compose into the keys validate_config checks (a renamed key would skip its check)."""
    cfg = compose_cfg(["arm=lstm_clip"])
    assert cfg.model.cell == "lstm" and cfg.clipping.mode == "norm" and cfg.clipping.threshold > 0
    cfg = compose_cfg(["arm=rnn"])
    assert cfg.model.cell == "rnn" and cfg.clipping.mode == "none"
    cfg = compose_cfg([])
    for key in ("data.seq_len", "data.batch_size", "model.hidden_size", "model.num_layers", "optimizer.lr",
                "trainer.max_steps", "clipping.mode", "model.init", "model.spectral_radius"):
        assert key.split(".")[0] in cfg and key.split(".")[1] in cfg[key.split(".")[0]], key


# ----------------------------------------------------------------------------- group choices


@pytest.mark.parametrize(
    "overrides,group,bad,options",
    [
        (["model=foo"], "model", "foo", "['lstm', 'rnn']"),
        (["optimizer=adamw"], "optimizer", "adamw", "['adam', 'rmsprop', 'sgd']"),
        (["data=mnist"], "data", "mnist", "['adding', 'copy']"),
        (["-m", "model=rnn,lstmx"], "model", "lstmx", "['lstm', 'rnn']"),
        (["clipping=none,norm,l1"], "clipping", "l1", "['none', 'norm', 'value']"),
        (["arm=lstm_clipped"], "arm", "lstm_clipped", "['lstm', 'lstm_clip', 'rnn']"),
        (["data.seq_len=5", "+model=gru"], "model", "gru", "['lstm', 'rnn']"),
    ],
)
def test_unknown_group_choices(overrides, group, bad, options):
    message = check_group_choices(overrides, config_dir())
    assert message is not None
    assert f"{group}={bad!r}" in message
    assert options in message
    assert "\n" not in message


@pytest.mark.parametrize(
    "overrides",
    [
        ["model=rnn"],
        ["model=rnn,lstm", "data=copy,adding", "clipping=none,norm,value"],
        ["hydra/launcher=joblib"],
        ["model.hidden_size=3"],
        ["+foo=bar"],
        ["arm=null"],
        ["trainer=gpu", "logger=none", "callbacks=none"],
        ["model=choice(rnn,lstm)"],  # sweep syntax is left to Hydra
        [],
    ],
)
def test_known_or_unchecked_choices_pass(overrides):
    assert check_group_choices(overrides, config_dir()) is None
