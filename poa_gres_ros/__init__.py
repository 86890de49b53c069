"""poa_gres_ros: Generalized Referring Expression Segmentation (InstAlign / POA) for robots.

Layers (see shared design notes, architecture.md §2): ``core`` (configs, result types,
metrics), ``modeling`` (the POA network), ``inference`` (predictor and backends), ``export``
(ONNX, TensorRT), ``training``, ``tabletop`` (synthetic data), ``speech``, ``bag`` and
``tools`` (the ``poa-gres`` CLI) run without ROS; only ``ros`` imports rclpy.

In a colcon build the generated interfaces (``poa_gres_ros.msg``) live in the same Python
package. ``extend_path`` lets a source checkout that is first on ``sys.path`` still find them
in the colcon install tree (and is a no-op for a plain ``pip install .``).
"""

from pkgutil import extend_path

__path__ = extend_path(__path__, __name__)
__version__ = '0.1.0'
