"""Rewrite build-machine paths baked into the ROS pip wheels' exported CMake files.

The ros-*-msgs wheels export targets such as std_msgs::std_msgs__rosidl_generator_py
whose INTERFACE_INCLUDE_DIRECTORIES point at the wheel builder's interpreter
(/opt/python/cp311-cp311/include/python3.11 and its numpy include dir, for cp311). CMake
refuses imported targets with non-existent include paths, so any package that
generates messages depending on std_msgs/sensor_msgs/... fails to configure.
Run with the venv's python:  V/bin/python fix_wheel_cmake.py   (idempotent)
"""

import glob
import os
import sys
import sysconfig

import numpy

_v = f'{sys.version_info.major}{sys.version_info.minor}'
_pv = f'python{sys.version_info.major}.{sys.version_info.minor}'
BUILDER = f'/opt/python/cp{_v}-cp{_v}'  # manylinux builder's interpreter prefix
py_inc = sysconfig.get_paths()['include']
np_inc = numpy.get_include()
if not os.path.isfile(os.path.join(py_inc, 'Python.h')):
    sys.exit(f'Python.h not found in {py_inc}: install the python3-dev / python3.11-dev headers')
repl = [
    (f'{BUILDER}/include/{_pv}', py_inc),
    (f'{BUILDER}/lib/{_pv}/site-packages/numpy/_core/include', np_inc),
]
n = 0
for path in glob.glob(os.path.join(sys.prefix, 'share', '*', 'cmake', '*.cmake')):
    with open(path) as f:
        text = f.read()
    new = text
    for old, rep in repl:
        new = new.replace(old, rep)
    if new != text:
        with open(path, 'w') as f:
            f.write(new)
        n += 1
left = [
    p
    for p in glob.glob(os.path.join(sys.prefix, 'share', '*', 'cmake', '*.cmake'))
    if BUILDER in open(p).read()
]
print(
    f'patched {n} cmake files; python include={py_inc}; numpy include={np_inc}; '
    f'files still mentioning {BUILDER}: {len(left)}'
)
