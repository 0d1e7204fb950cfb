"""rnn-gradients' launchers: Hydra's basic and joblib launchers (and, in rnn_gradients_slurm, its submitit
SLURM launcher) with the project's keys `hydra.launcher.fail_fast` (all three) and `hydra.launcher.wait`
(SLURM), registered as structured configs that conf/hydra/launcher/*.yaml extend."""
