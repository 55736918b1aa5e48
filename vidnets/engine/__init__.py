"""Training, testing and prediction: the engine that runs the models on the data.

- :mod:`vidnets.engine.config` — YAML recipes parsed into typed dataclasses (``configs/*.yaml``)
- :mod:`vidnets.engine.build` — config → datasets and model (the only reader of configs)
- :mod:`vidnets.engine.train` — the trainer (SGD, schedules, mixed precision, resume, DDP)
- :mod:`vidnets.engine.evaluate` — multi-view testing, metrics, confusion matrices, score dumps
- :mod:`vidnets.engine.predict` — top-k and timelines for new videos
- :mod:`vidnets.engine.demo` — ``vidnets demo``
"""
