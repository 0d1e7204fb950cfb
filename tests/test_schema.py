"""The config schema (rnn_gradients.schema) against every config a user can compose: every leaf has a
rule, every shipped default obeys it. Bad values themselves are tried through the real command line,
in one table: tests/test_bad_inputs.py; the constructors' refusals against the command line's, and the
check of every job of a sweep: tests/test_rules.py."""

from __future__ import annotations


import pytest

from rnn_gradients.paths import config_dir
from rnn_gradients import cells, tasks
from rnn_gradients.schema import RULES, ignored_values, leaves, rules_for, validate

GROUPS = sorted(p.name for p in config_dir().iterdir() if p.is_dir() and p.name != "hydra")


def options(group: str) -> list[str]:
    return sorted(p.stem for p in (config_dir() / group).glob("*.yaml"))


def every_composable_config() -> list[list[str]]:
    """The default config, and every option of every group on top of it."""
    return [[]] + [[f"{group}={option}"] for group in GROUPS for option in options(group)]


@pytest.mark.parametrize("overrides", every_composable_config(), ids=lambda o: " ".join(o) or "defaults")
def test_every_leaf_has_a_rule_and_the_defaults_obey_it(compose_cfg, overrides):
    cfg = compose_cfg(overrides)
    rules = rules_for(cfg)
    missing = [key for key in leaves(cfg) if key not in rules]
    assert missing == [], f"leaves without a rule (rnn_gradients.schema.RULES, or the cell's / task's keys): {missing}"
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


def _yaml_targets(group: str) -> dict[str, str]:
    import yaml

    return {option: yaml.safe_load((config_dir() / group / f"{option}.yaml").read_text())["_target_"] for option in options(group)}


@pytest.mark.parametrize("group,registry,locate", [("model", cells, cells.cell_class), ("data", tasks, tasks.task_class)])
def test_config_files_and_registry_agree(group, registry, locate):
    """Every conf/model (conf/data) file names a registered cell (task) under its own name, and every
    registered one has its file: a new plug-in without its YAML, or a YAML of a plug-in outside the
    registry, fails here."""
    targets = _yaml_targets(group)
    named = {option: locate(target) for option, target in targets.items()}
    assert {option: plugin.name for option, plugin in named.items()} == {option: option for option in targets}
    assert sorted(named.values(), key=lambda p: p.name) == sorted(registry.registered(), key=lambda p: p.name)


@pytest.mark.parametrize("cell", cells.registered(), ids=lambda c: c.name)
def test_every_key_of_a_cell_is_in_its_file_and_back(compose_cfg, cell):
    """A rule of a key the YAML lacks checks nothing; a YAML key without a rule would pass unchecked."""
    cfg = compose_cfg([f"model={cell.name}"])
    assert sorted(k for k in cfg.model if not k.startswith("_")) == sorted(cell.keys)


@pytest.mark.parametrize("task", tasks.registered(), ids=lambda t: t.name)
def test_every_key_of_a_task_is_in_its_file_and_back(compose_cfg, task):
    cfg = compose_cfg([f"data={task.name}"])
    assert sorted(k for k in cfg.data if not k.startswith("_")) == sorted([*task.keys, "seq_len"])


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
