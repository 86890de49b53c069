"""The lowest layer: types, configurations and pure-numpy rules shared by every other layer
(no ROS; imports nothing else of this package; torch only where post-processing is handed
torch tensors).

- ``model_config``: the model's architecture configuration (``POAConfig``, saved with a model).
- ``model_sections``: its sections (input, backbone, text, pixel decoder, decoder, heads).
- ``model_presets``: the named presets ``paper``, ``tabletop``, ``tiny`` and ``get_preset``.
- ``thresholds``: the post-processing thresholds (``Thresholds``).
- ``inference_options``: backend and precision names.
- ``node_settings``: the node's parameter table and settings snapshot.
- ``results``: the result types (``GresPrediction``, ``InstanceResult``, ``PhraseSpan``).
- ``mask_geometry``: box, area and centroid of a mask.
- ``geometry3d``: depth decoding, intrinsics and the 3D geometry of an instance.
- ``stamp_pairing``: pairing messages by header stamp in a bounded buffer.
- ``grounding``: the instruction span (phrase) each instance answers.
- ``postprocess``: model outputs to results, the one path of the predictor and evaluation.
- ``metrics``: gRefCOCO and Ref-ZOM metrics, counted as the reference evaluators.
- ``instance_metrics``: instance recall / precision, count and phrase-grounding accuracy.
- ``json_files``: reading JSON files with errors that name the file.
- ``visualize``: overlays of a prediction (and of the ground truth).
"""
