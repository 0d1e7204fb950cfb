"""The template's performance benchmark (a development tool, not part of the package):
`python scripts/bench [--quick|--tiny] [--out outputs/bench] [--only steps,...] [--threads N]`.

Every comparison runs side by side in one process, interleaved in counterbalanced order (A B, B A,
A B, ...) so that load from other processes on a shared machine hits both alike; each row reports
medians over samples and the ratio of the medians. Rows (docs/benchmarks.md explains them):

 1. template_vs_plain     the template's training step (real Trainer + SequenceModule from the
                          Hydra-composed config, default callbacks) / a hand-written PyTorch loop
 2. observatory_overhead  the template with default callbacks / with callbacks=none
 1-2 *_fresh              rows 1-2 again for the shortest step, each sample one variant alone in a fresh
                          process (a cross-check: rows 1-2 build a dozen trainers in one process)
 3. data_share            task.sample() / one plain training step
 4. startup               `python -m rnn_gradients.train` from launch to the first training step
 5. sweep                 a multirun with the basic (sequential) launcher / with the joblib launcher
 6. scaling               step time against T, least-squares line
 7. gpu                   the template on trainer=gpu / a plain autocast loop (skipped without CUDA)
    gpu_observatory_overhead  the same run: default callbacks / callbacks=none, on trainer=gpu
    denormals             step time with default floating point / with denormals flushed to zero
    probe                 one gradient-flow probe call (float64, the probe batch): the cell's fused layer
                          stepped one time step at a time + autograd / the unrolled twin it replaced
                          (tests/unrolled_twin.py)

Reading order: cli (sections, bench.json), modes (sizes), stats (medians, rows, targets), config,
clock, turns (step-level interleaving), plain_loop, template, proc (subprocesses), then one rows_* file
per section (rows_startup with its probes probe_job_start and probe_first_step) and report (the table).
This file stays free of imports: Hydra imports the package in the parent process of a training command
(probe_job_start), where torch must not load.
"""
