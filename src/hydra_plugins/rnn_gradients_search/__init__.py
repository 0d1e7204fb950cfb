"""rnn-gradients' hyperparameter search: `hydra/sweeper=optuna` (optuna_sweeper.py), its structured config
registered in Hydra's ConfigStore (schema.py) and extended by conf/hydra/sweeper/optuna.yaml."""
