"""The ROS 2 layer, the only one that imports rclpy and the generated messages.

Nodes and what they are made of:

- ``gres_node``: the GRES lifecycle node (image + instruction -> instances).
- ``gres_node_frames``: its frame path (instruction and image callbacks, inference,
  publishing the result).
- ``gres_node_health``: its /diagnostics timer, QoS mismatch check and throttled logs.
- ``node_params``: its parameter descriptors and declaration (the table is
  ``core/node_settings.py``).
- ``image_input``: image subscriptions (raw, compressed, QoS 'auto', loss count).
- ``depth_input``: the optional depth + CameraInfo input and the 3D fields of a result.
- ``instruction_state``: the current instruction, its id, expiry and binding to images (by
  header stamp or receipt order).
- ``clock_receipt``: under use_sim_time, the /clock time at which the middleware received a
  message (an instruction's time), from the reception stamps of /clock messages.
- ``binding_notices``: what the node logs and reports about binding (the rule in force, frames
  skipped without an instruction) and its time-jump callback (the node clock stepping back).
- ``log_text``: long instruction text cut for log lines.
- ``frame_processor``: one frame through the predictor into a result message.
- ``result_msgs``: the node's rclpy messages (through ``conversions.result_msgs``).
- ``geometry_viz``: point cloud and markers of the 3D result.
- ``node_stats``: the single-slot frame buffer, counters and latencies.
- ``diagnostics``: /diagnostics from the node's statistics.
- ``qos``: QoS profiles and the mismatch check.
- ``predictor_loading``: loading and warming up the predictor at activation.
- ``speech_node`` and ``speech_params``: the speech node and its parameters.
- ``launch_commands``: the node command lines (the launch file's stand-in, no rclpy).
- ``process_exit``: the node executables' fast, orderly exit (further signals ignored).
- ``bag_player``: live bag replay into a running node.
"""
