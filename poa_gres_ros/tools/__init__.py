"""The ``poa-gres`` command line: ``cli`` dispatches to one verb per module.

- ``cli``: the entry point and verb discovery.
- ``info``: environment, versions, backends and models.
- ``init_model``: a fresh model folder for a preset.
- ``train``, ``eval``, ``calibrate``: training, evaluation, threshold calibration on val.
- ``segment``: one image and an instruction to masks and an overlay.
- ``export``, ``build_engine``: ONNX export and TensorRT engines.
- ``make_dataset``, ``make_bag``: rendered tabletop datasets and bags.
- ``replay``: offline or live bag replay with a report.
- ``node``: start the nodes like the launch file.
- ``demo``: the end-to-end demo of ``make demo``.
- ``threshold_args``: the post-processing options of ``segment`` and ``eval`` (not a verb).
"""
