"""The config schema (rnn_gradients.schema) against every config a user can compose: every leaf has a
rule, every shipped default obeys it. Bad values themselves are tried through the real command line,
in one table: tests/test_bad_inputs.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from rnn_gradients.paths import config_dir
from rnn_gradients.schema import RULES, ignored_values, leaves, validate

GROUPS = sorted(p.name for p in config_dir().iterdir() if p.is_dir() and p.name != "hydra")


def options(group: str) -> list[str]:
    return sorted(p.stem for p in (config_dir() / group).glob("*.yaml"))


def every_composable_config() -> list[list[str]]:
    """The default config, and every option of every group on top of it."""
    return [[]] + [[f"{group}={option}"] for group in GROUPS for option in options(group)]


@pytest.mark.parametrize("overrides", every_composable_config(), ids=lambda o: " ".join(o) or "defaults")
def test_every_leaf_has_a_rule_and_the_defaults_obey_it(compose_cfg, overrides):
    cfg = compose_cfg(overrides)
    missing = [key for key in leaves(cfg) if key not in RULES]
    assert missing == [], f"leaves without a rule in rnn_gradients.schema.RULES: {missing}"
    validate(cfg)


def test_the_walk_sees_every_group_and_option():
    """A walk that skipped a group would pass vacuously: the groups of conf/ are all in it."""
    walked = {o[0].split("=")[0] for o in every_composable_config() if o}
    assert walked == set(GROUPS) >= {"data", "model", "clipping", "optimizer", "scheduler", "trainer", "logger",
                                     "callbacks", "paths", "arm", "experiment", "profile"}


def test_every_rule_names_a_key_that_exists(compose_cfg):
    """No rule for a key nobody can set (a renamed key would leave its rule checking nothing)."""
    seen = set()
    for overrides in every_composable_config():
        seen |= set(leaves(compose_cfg(overrides)))
    assert sorted(set(RULES) - seen) == []


@pytest.mark.parametrize(
    "overrides,note",
    [
        (["clipping=none", "clipping.threshold=2.0"], "clipping.threshold=2.0 has no effect with clipping=none"),
        (["clipping=norm", "clipping.threshold=2.0"], None),
        (["clipping=none"], None),
    ],
)
def test_values_the_chosen_options_ignore_are_reported(compose_cfg, overrides, note):
    assert ignored_values(compose_cfg(overrides)) == ([note] if note else [])
