"""Figures and tables of the ablation sweeps: `python -m rnn_gradients.figures SWEEP_DIR [...] [--out DIR]`.

The numbers come from rnn_gradients.analysis (reading runs, aggregating, the spike and divergence rules);
this package only draws and writes them. registry: the one list of figures; one module per figure
(scalar_toy, grad_flow_through_time, gradient_paths, learning_curves, grad_norm_training, loss_vs_seq_len,
divergence_vs_lr, loss_cliff, grad_histograms, cures, recurrent_spectrum), each importing only style (what they
share) and the analysis;
summary_files: summary.csv, summary.md and summary_numbers.json; cli: the command line and make_report.
Nothing is imported here, so that importing one module never imports the others.
"""
