"""The engine that trains, tests and runs the models on the data (the papers' methods build on it
in :mod:`vidnets.methods`).

- :mod:`vidnets.engine.config` — YAML recipes parsed into typed, validated dataclasses
- :mod:`vidnets.engine.recipes` — the recipe table: dataset builder, model and test protocol per recipe
- :mod:`vidnets.engine.build` — config → datasets and model (the only reader of configs)
- :mod:`vidnets.engine.train` — the one training loop (SGD, schedules, mixed precision, resume, DDP)
  and its :class:`~vidnets.engine.train.Objective` hook
- :mod:`vidnets.engine.schedules` — learning-rate schedules
- :mod:`vidnets.engine.evaluate` — multi-view testing, reports, confusion matrices
- :mod:`vidnets.engine.metrics` — accuracies, mean class accuracy, view averaging, the score-dump format
- :mod:`vidnets.engine.checkpoint` — atomic, weights-only checkpoints and RNG state
- :mod:`vidnets.engine.distributed` — process groups, wrapping and gathering
- :mod:`vidnets.engine.runlog`, :mod:`vidnets.engine.plots` — CSV / TensorBoard logs and curves
- :mod:`vidnets.engine.fastpath` — bf16, channels-last, Conv+BN folding, the model prepared for evaluation
- :mod:`vidnets.engine.predict` — top-k and timelines for new videos
- :mod:`vidnets.engine.summary` — the run header ``vidnets train`` prints (device, precision, model, data)
- :mod:`vidnets.engine.demo` — ``vidnets demo``
- :mod:`vidnets.engine.commands` — ``vidnets train | test | predict | demo``
"""
