"""Hydra launcher plugins of rnn-gradients (Hydra instantiates launchers only from the hydra_plugins namespace)."""
