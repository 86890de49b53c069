"""Publish every sample message of support/msg_samples.py (reliable, transient local) at 5 Hz
until SIGINT. Run by test_messages.py in a separate process."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import rclpy  # noqa: E402
from rclpy.executors import ExternalShutdownException  # noqa: E402
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy  # noqa: E402

from support import msg_samples  # noqa: E402


def main():
    rclpy.init()
    node = rclpy.create_node('sample_publisher')
    qos = QoSProfile(
        depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL
    )
    samples = msg_samples.build_all()
    pubs = {
        name: node.create_publisher(type(msg), msg_samples.SAMPLE_TOPICS[name], qos)
        for name, msg in samples.items()
    }

    def tick():
        for name, msg in samples.items():
            pubs[name].publish(msg)

    node.create_timer(0.2, tick)
    try:
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    node.destroy_node()
    rclpy.try_shutdown()
    return 0


if __name__ == '__main__':
    sys.exit(main())
