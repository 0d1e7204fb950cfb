"""`python -m rnn_gradients.figures SWEEP_DIR [...] [--out DIR]`."""

from rnn_gradients.figures.cli import main

if __name__ == "__main__":
    main()
