"""One run: its configuration, its folder, the training loop (single runs and ensembles),
the evaluation of one trained run, and the per-run lock.

Modules: ``settings`` (how a setting is declared), ``config`` (:class:`RunConfig`, the run
id), ``folder`` (the run folder: sole owner of its layout and files), ``draws`` (seeding,
batch indices, sampling noise), ``ensemble`` (:class:`Ensemble`), ``graph_step``
(:class:`GraphedStep`), ``loop`` (the one training loop), ``trainer`` (``train``,
``train_ensemble``), ``evaluate`` (``evaluate_run``), ``needs`` (which metrics a
dataset can give), ``lock``. Imports go one way:
trainer -> loop -> {graph_step -> ensemble} -> draws, config -> settings; folder is used by
all (it imports config only to turn a stored record into a RunConfig).
"""
