"""poa_gres_ros: Generalized Referring Expression Segmentation (InstAlign / POA) for robots.

Layers (the README's "Repository map" says which may import which): ``core`` (configs,
result types, metrics), ``modeling`` (the POA network), ``export`` (ONNX, TensorRT),
``inference`` (predictor and backends), ``training``, ``tabletop`` (synthetic data),
``speech``, ``conversions`` (ROS message contents without rclpy), ``bag`` and ``tools`` (the
``poa-gres`` CLI) run without ROS; only ``ros`` imports rclpy.

In a colcon build the generated interfaces (``poa_gres_ros.msg``) live in the same Python
package. ``extend_path`` lets a source checkout that is first on ``sys.path`` still find them
in the colcon install tree (and is a no-op for a plain ``pip install .``).
"""

from pkgutil import extend_path

__path__ = extend_path(__path__, __name__)
__version__ = '0.1.0'
