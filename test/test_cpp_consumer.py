"""The generated C++ interfaces work for C++ consumers (grasp planners): a program compiled
against install/ headers reads a message serialised by rclpy and writes one rclpy reads."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from support import msg_samples

pytestmark = pytest.mark.ros
ROOT = Path(__file__).resolve().parents[1]


def test_cpp_round_trip(tmp_path):
    from rclpy.serialization import deserialize_message, serialize_message

    from poa_gres_ros.msg import GresInstances

    if shutil.which('g++') is None:
        pytest.fail('g++ is required (make setup installs it)')
    from ament_index_python.packages import get_package_prefix

    ours = Path(get_package_prefix('poa_gres_ros'))  # install/poa_gres_ros
    venv = Path(sys.prefix)
    includes = [f'-I{ours / "include" / "poa_gres_ros"}']
    includes += [f'-I{d}' for d in sorted((venv / 'include').iterdir()) if d.is_dir()]
    exe = tmp_path / 'gres_consumer'
    cmd = [
        'g++',
        '-std=c++17',
        '-O0',
        str(ROOT / 'test/cpp/gres_consumer.cpp'),
        '-o',
        str(exe),
        *includes,
        f'-L{ours / "lib"}',
        f'-L{venv / "lib"}',
        '-lpoa_gres_ros__rosidl_typesupport_cpp',
        '-lrmw_fastrtps_cpp',
        '-lrmw',
        '-lrcutils',
        '-lrosidl_runtime_c',
        '-lrosidl_typesupport_cpp',
    ]
    build = subprocess.run(cmd, capture_output=True, text=True)
    assert build.returncode == 0, build.stderr[-3000:]

    sample = msg_samples.instances()
    (tmp_path / 'in.cdr').write_bytes(serialize_message(sample))
    env = dict(os.environ)
    env['LD_LIBRARY_PATH'] = f'{ours / "lib"}:{env.get("LD_LIBRARY_PATH", "")}'
    run = subprocess.run(
        [str(exe), str(tmp_path / 'in.cdr'), str(tmp_path / 'out.cdr')],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    lines = run.stdout.splitlines()
    fields = dict(
        ln.split('=', 1) for ln in lines if not ln.startswith(('instance ', 'geometry ', 'depth_'))
    )
    assert fields['instruction'] == sample.instruction  # UTF-8 survives C++
    assert fields['frame_id'] == sample.header.frame_id
    assert int(fields['instruction_id']) == sample.instruction_id
    assert int(fields['num_instances']) == len(sample.instances)
    inst_lines = [ln for ln in lines if ln.startswith('instance ')]
    want_sum = sum(bytes(sample.instances[1].mask.data))
    assert inst_lines[1].endswith(f'sum={want_sum}')
    assert 'roi=17,29,6,5 mask=6x5' in inst_lines[1]
    # the 3D fields, read in C++ as a grasp planner does
    depth = [ln for ln in lines if ln.startswith('depth_')]
    assert depth == ['depth_status=3 invalid=1', f'depth_detail={sample.depth_detail}']
    geo = [ln for ln in lines if ln.startswith('geometry ')]
    assert geo[1] == (
        'geometry id=1 valid=1 centroid=1.125,-0.0625,0.75 box=0.8/0.08,0.06,0.1 q=0.5,0.5 '
        'orientation_valid=1 extent=0.1 points=1235 missing=0.125'
    )

    back = deserialize_message((tmp_path / 'out.cdr').read_bytes(), GresInstances)
    assert back.instruction == 'the blue cube' and back.instruction_id == 7
    assert back.instances[0].phrase.text == 'blue cube'
    assert back.instances[0].relevance == pytest.approx(0.75)
    assert list(back.instances[0].mask.data) == [0, 255, 255, 255, 0, 255]
    g = back.instances[0].geometry
    assert g.valid and (g.centroid.x, g.centroid.z, g.orientation.w) == (0.25, 0.5, 1.0)
    assert g.num_points == 99 and g.missing_depth_fraction == 0.5
    assert back.depth_status == GresInstances.DEPTH_OK
