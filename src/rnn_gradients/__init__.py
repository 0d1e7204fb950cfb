"""rnn-gradients: measure why an LSTM cures vanishing gradients but not exploding ones."""

__version__ = "0.1.0"
