"""Start the GRES node (and optionally the speech node) with config/gres.yaml.

    ros2 launch poa_gres_ros gres.launch.py image_topic:=/camera/color/image_raw
    ros2 launch poa_gres_ros gres.launch.py namespace:=robot1 model_dir:=/path/to/model
    ros2 launch poa_gres_ros gres.launch.py speech:=true use_sim_time:=true
    ros2 launch poa_gres_ros gres.launch.py node_log_level:=debug   # only the nodes' loggers

Everything not given as an argument comes from ``params_file`` (default: the installed
config/gres.yaml); ``model_dir`` and ``backend`` override the file only when non-empty.
No side effects: no downloads, no installs, no subprocesses beyond the nodes.

Without the launch package (the pip-wheel ROS 2 of this repository), the same executable
with the same parameter file is started by ``poa-gres node`` (poa_gres_ros/tools/node.py,
same arguments) or directly:
    scripts/gres_node --ros-args --params-file config/gres.yaml -r image:=/camera/image_raw
"""

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare

PACKAGE = 'poa_gres_ros'

ARGUMENTS = {
    'namespace': ('', 'Namespace of the nodes and of their relative topics.'),
    'params_file': (None, 'Parameter file of gres_node (default: the installed gres.yaml).'),
    'image_topic': ('/camera/image_raw', 'Camera topic (sensor_msgs/Image) remapped to image.'),
    'depth_topic': (
        '/camera/aligned_depth_to_color/image_raw',
        'Depth aligned to the colour image (16UC1 mm or 32FC1 m) remapped to depth; used with '
        'the enable_3d parameter.',
    ),
    'camera_info_topic': (
        '/camera/camera_info',
        "The colour camera's sensor_msgs/CameraInfo, remapped to camera_info (enable_3d).",
    ),
    'use_sim_time': ('false', 'Use /clock (bag replay with ros2 bag play --clock).'),
    'log_level': ('info', 'Level of every logger, rcl and rmw included: debug, info, warn, ...'),
    'node_log_level': ('', "Level of the nodes' own loggers only (e.g. debug); '' = log_level."),
    'model_dir': ('', 'Model folder or installed model name (empty: from params_file).'),
    'backend': ('', 'auto, torch, onnxruntime or tensorrt (empty: from params_file).'),
    'speech': ('false', 'Also start speech_node (spoken instructions, speech_params_file).'),
    'speech_params_file': (
        None,
        'Parameter file of speech_node (default: the installed speech.yaml).',
    ),
}


def _log_args(arg: dict, node: str) -> list[str]:
    """--log-level for every logger, then for the node's own logger (<namespace>.<node>)."""
    out = ['--log-level', arg['log_level']]
    if arg['node_log_level']:
        logger = '.'.join(filter(None, [*arg['namespace'].strip('/').split('/'), node]))
        out += ['--log-level', f'{logger}:={arg["node_log_level"]}']
    return out


def _nodes(context):
    arg = {name: LaunchConfiguration(name).perform(context) for name in ARGUMENTS}
    use_sim_time = arg['use_sim_time'].lower() in ('true', '1', 'yes')
    overrides = {'use_sim_time': use_sim_time}
    for name in ('model_dir', 'backend'):
        if arg[name]:
            overrides[name] = arg[name]
    gres = Node(
        package=PACKAGE,
        executable='gres_node',
        name='gres_node',
        namespace=arg['namespace'],
        parameters=[arg['params_file'], overrides],
        remappings=[  # <image>/compressed follows image
            ('image', arg['image_topic']),
            ('depth', arg['depth_topic']),
            ('camera_info', arg['camera_info_topic']),
        ],
        ros_arguments=_log_args(arg, 'gres_node'),
        output='screen',
        emulate_tty=True,
    )
    speech = Node(
        package=PACKAGE,
        executable='speech_node',
        name='speech_node',
        namespace=arg['namespace'],
        parameters=[arg['speech_params_file'], {'use_sim_time': use_sim_time}],
        ros_arguments=_log_args(arg, 'speech_node'),  # publishes the relative instruction/spoken
        output='screen',
        emulate_tty=True,
        condition=IfCondition(LaunchConfiguration('speech')),
    )
    return [gres, speech]


def generate_launch_description():
    share = FindPackageShare(PACKAGE)
    default_files = {
        'params_file': PathJoinSubstitution([share, 'config', 'gres.yaml']),
        'speech_params_file': PathJoinSubstitution([share, 'config', 'speech.yaml']),
    }
    declared = [
        DeclareLaunchArgument(
            name,
            default_value=default_files[name] if default is None else default,
            description=text,
        )  # fmt: skip
        for name, (default, text) in ARGUMENTS.items()
    ]
    return LaunchDescription([*declared, OpaqueFunction(function=_nodes)])
