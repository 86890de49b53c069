"""Shared parts of the tests (imported as ``support.<module>``; nothing here is collected).

- ``ros_processes``: the ``ros_node`` and ``spawn`` fixtures for real-process ROS 2 tests
  (loaded for every test module by conftest.py).
- ``ros_waits``: ``spin_until`` and waiting for publishers / subscribers.
- ``gres_process``: tiny model folders, starting gres_node as a process, a result probe,
  lifecycle and parameter calls, image messages.
- ``image_encoders``: an independent encoder of RGB pictures into every image encoding.
- ``msg_samples``: one sample of every custom message with every field set;
  ``publish_samples.py`` publishes them from another process.
- ``bags``: real bag fixtures (make-bag output, looped, remapped and padded variants) and the
  ``poa-gres`` runner.
- ``backends``: one tiny model and its ONNX export per session for the backend tests.
- ``gref_files``: a tiny gRefCOCO-format dataset and a Ref-ZOM pickle.
- ``tabletop_worlds``: hand-built tabletop views for exact expression-rule tests.
"""
