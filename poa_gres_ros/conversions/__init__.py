"""ROS message contents <-> numpy arrays and result types, without rclpy.

The node (``ros/``, rclpy messages) and bag replay (``bag/``, rosbags messages) read and write
the same message layouts; the conversions live here once, below both, and take any object with
the message's fields (builders take the message classes to use).

- ``image_msgs``: sensor_msgs/Image and CompressedImage -> (H, W, 3) uint8 RGB, every
  encoding the node accepts, without cv_bridge.
- ``result_msgs``: GresPrediction <-> poa_gres_ros/GresInstances (one path for the node's
  results, make-bag's ground truth and replay).
- ``depth3d``: depth images and CameraInfo in, 3D instance geometry and point clouds out.
"""
