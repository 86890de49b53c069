"""Start the GRES node (and optionally the speech node) with config/gres.yaml.

    ros2 launch poa_gres_ros gres.launch.py image_topic:=/camera/color/image_raw
    ros2 launch poa_gres_ros gres.launch.py namespace:=robot1 model_dir:=/path/to/model
    ros2 launch poa_gres_ros gres.launch.py speech:=true use_sim_time:=true

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
    'use_sim_time': ('false', 'Use /clock (bag replay with ros2 bag play --clock).'),
    'log_level': ('info', 'Log level: debug, info, warn, error, fatal.'),
    'model_dir': ('', 'Model folder or installed model name (empty: from params_file).'),
    'backend': ('', 'auto, torch, onnxruntime or tensorrt (empty: from params_file).'),
    'speech': ('false', 'Also start speech_node (spoken instructions, config/speech.yaml).'),
}


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
        remappings=[('image', arg['image_topic'])],  # <image>/compressed follows it
        ros_arguments=['--log-level', arg['log_level']],
        output='screen',
        emulate_tty=True,
    )
    speech = Node(
        package=PACKAGE,
        executable='speech_node',
        name='speech_node',
        namespace=arg['namespace'],
        parameters=[
            PathJoinSubstitution([FindPackageShare(PACKAGE), 'config', 'speech.yaml']),
            {'use_sim_time': use_sim_time},
        ],
        # speech_node publishes the absolute /instruction/spoken; keep it in the namespace
        remappings=[('/instruction/spoken', 'instruction/spoken')],
        ros_arguments=['--log-level', arg['log_level']],
        output='screen',
        emulate_tty=True,
        condition=IfCondition(LaunchConfiguration('speech')),
    )
    return [gres, speech]


def generate_launch_description():
    default_params = PathJoinSubstitution([FindPackageShare(PACKAGE), 'config', 'gres.yaml'])
    declared = [
        DeclareLaunchArgument(
            name, default_value=default_params if default is None else default, description=text
        )
        for name, (default, text) in ARGUMENTS.items()
    ]
    return LaunchDescription([*declared, OpaqueFunction(function=_nodes)])
