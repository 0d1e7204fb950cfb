"""Callbacks that keep a run safe rather than measure it: divergence detection, checkpoints, graceful signals."""
