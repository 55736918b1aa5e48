"""The papers' methods, built on the engine (data → models → engine → methods → cli).

- :mod:`vidnets.methods.fusion` — late fusion of per-stream score dumps: weighted averaging
  (Two-Stream, TSN weights) or a linear SVM on stacked softmax scores (Two-Stream)
- :mod:`vidnets.methods.svm` — linear SVM on fixed video descriptors (C3D §3.4)
- :mod:`vidnets.methods.descriptors` — C3D video descriptors: a layer (fc6) over sliding windows,
  pooled and L2-normalised, one file per video
- :mod:`vidnets.methods.transfer` — T3D's 2D→3D supervision transfer and fine-tuning, as
  objectives of the engine's Trainer
- :mod:`vidnets.methods.multitask` — Two-Stream multi-task learning: mixed datasets, the sampler
  and the Trainer objective
- :mod:`vidnets.methods.commands` — ``vidnets fuse | features | svm | transfer``
"""
