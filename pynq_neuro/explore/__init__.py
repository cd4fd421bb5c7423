"""Design-space exploration: ``pynq-neuro explore`` (needs the ``explore`` extra: Ray Tune
and Optuna).

* :mod:`.space`: the search space (file or defaults) and the design point of a trial;
* :mod:`.trial`: one trial (train, prune, golden-model accuracy, compile) in its folder;
* :mod:`.runner`: Ray Tune with an Optuna multi-objective sampler, resume, ``explore.json``;
* :mod:`.verify`: the second pass on the Pareto front (sharded RTL regression, Yosys);
* :mod:`.pareto`: the front, its table and the plot; :mod:`.cli`: the command.

Nothing here is imported by the board path; Ray, Optuna and torch load only when an
exploration runs.
"""
