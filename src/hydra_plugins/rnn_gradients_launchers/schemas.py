"""The structured configs of the project's launchers, registered in Hydra's ConfigStore when Hydra scans
its plugins (before it composes a config): Hydra's own launcher schemas plus the project's keys, so a
typo such as hydra.launcher.fail_fst is refused by Hydra and a value is checked against its type."""


from dataclasses import dataclass

from hydra._internal.core_plugins.basic_launcher import BasicLauncherConf
from hydra.core.config_store import ConfigStore
from hydra_plugins.hydra_joblib_launcher.config import JobLibLauncherConf
from hydra_plugins.hydra_submitit_launcher.config import SlurmQueueConf


@dataclass
class LocalLauncherConf(BasicLauncherConf):
    _target_: str = "hydra_plugins.rnn_gradients_launchers.local.LocalLauncher"
    fail_fast: bool = False  # after the first failed job no new job starts (rnn_gradients.fail_fast)


@dataclass
class ParallelLauncherConf(JobLibLauncherConf):
    _target_: str = "hydra_plugins.rnn_gradients_launchers.local.ParallelLauncher"
    fail_fast: bool = False


@dataclass
class SlurmLauncherConf(SlurmQueueConf):
    _target_: str = "hydra_plugins.rnn_gradients_slurm.launcher.ResumingSlurmLauncher"
    fail_fast: bool = False  # ... and the failed job cancels the array tasks still pending
    wait: bool = True  # false: return once every job is queued (follow with sweep_report --watch)


STORE = ConfigStore.instance()
for name, node in (("rnn_gradients_parallel", ParallelLauncherConf), ("rnn_gradients_slurm", SlurmLauncherConf)):
    STORE.store(group="hydra/launcher", name=name, node=node, provider="rnn_gradients")  # bases of parallel.yaml, slurm.yaml
# Hydra's default launcher, `basic`, becomes the same launcher with fail_fast: a group default in
# config.yaml would outrank the experiments' `override /hydra/launcher: parallel` (Hydra keeps the first
# override it meets, the primary config's). ConfigStore keeps the last store of a name, and Hydra scans
# its core plugins (which store `basic`) before hydra_plugins; importing BasicLauncherConf above runs
# that store first in any case.
STORE.store(group="hydra/launcher", name="basic", node=LocalLauncherConf, provider="rnn_gradients")
