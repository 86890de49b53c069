"""Camera bags (rosbag2, mcap or sqlite3) through rosbags, without rclpy: writing rendered
tabletop bags, reading any robot's bag deterministically, offline replay and scoring.

- ``typestore``: a rosbags type store with ROS 2's types and this package's messages.
- ``messages``: the camera-driver messages of a bag (image, CameraInfo, depth, poses, strings)
  and the result message through ``conversions.result_msgs``.
- ``scenes``: one tabletop scene as a 10 Hz camera segment with instructions and ground truth.
- ``make_bag``: write rendered segments into a bag (``poa-gres make-bag``).
- ``timeline``: read a bag in log-time order: frames, instructions, ground truth, depth.
- ``topic_roles``: the topic roles of a bag, their default topics and types, ``--topic`` maps.
- ``timeline_records``: the records of a timeline (instruction, frame, ground truth, depth).
- ``replay``: offline replay through a Predictor, scored against the ground truth.
- ``live_eval``: score a live replay from the node's recorded results.
- ``eval3d``: per-instance 3D errors against the bag's 3D ground truth.
- ``report``: ``report.json``, ``report.md``, ``frames.jsonl`` and figures.

The rules (instruction pairing, loops, live versus offline) are in docs/bag_replay.md.
"""
