"""ROS message contents <-> numpy arrays and result types, without rclpy.

The node (``ros/``, rclpy messages) and bag replay (``bag/``, rosbags messages) read and write
the same message layouts; the conversions live here once, below both, and take any object with
the message's fields.

- ``image_msgs``: sensor_msgs/Image and CompressedImage -> (H, W, 3) uint8 RGB, every
  encoding the node accepts, without cv_bridge.
"""
