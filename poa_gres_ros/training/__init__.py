"""Training and evaluation of the POA model (no ROS); the method is docs/method.md.

- ``config``: the training configuration file (``TrainConfig`` and its sections).
- ``data_setup``: the model and the datasets of a run.
- ``datasets``: gRefCOCO, Ref-ZOM and tabletop data, cached features, grouped batches.
- ``matcher``: Hungarian matching of queries to ground-truth instances.
- ``losses``: elementary loss terms; ``point_sampling``: point-sampled mask terms.
- ``criterion``: the full training loss and its ablations.
- ``optim``: AdamW parameter groups and the learning-rate schedule.
- ``checkpoint``: checkpoints and scalar logs.
- ``trainer``: the training loop.
- ``evaluate``: batched evaluation with the reference metrics.
- ``calibrate``: the no-target threshold chosen on a validation split, folded into the head.
- ``report``: evaluation reports and figures.
"""
