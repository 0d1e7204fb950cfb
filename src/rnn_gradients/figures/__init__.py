"""Figures and tables of the ablation sweeps: `python -m rnn_gradients.figures SWEEP_DIR [...] [--out DIR]`.

The numbers come from rnn_gradients.analysis (reading runs, aggregating, the spike, divergence and
loss-excursion rules); this package only draws and writes them. registry: the one list of figures, in
their order (FIGURES); one module per figure, named after it, each importing only style (what they share)
and the analysis; summary_files: summary.csv, summary.md and summary_numbers.json; cli: the command line
and make_report.
Nothing is imported here, so that importing one module never imports the others.
"""
