"""One run: its configuration, its folder, the training loop (single runs and ensembles),
the evaluation of one trained run, and the per-run lock."""
