"""Architecture guards: the layer table of the README holds for every import, no module imports
itself through others, only ``poa_gres_ros.ros`` imports rclpy, and every package says what it
holds.

The table is the README's "Repository map": one row per package of ``poa_gres_ros/`` and the
layers it may import. Imports are read with ``ast`` from every module, inside functions too.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / 'poa_gres_ros'
ROS_PACKAGES = (
    'rclpy', 'std_msgs', 'sensor_msgs', 'builtin_interfaces', 'diagnostic_msgs', 'lifecycle_msgs',
    'rosgraph_msgs', 'rcl_interfaces', 'geometry_msgs', 'visualization_msgs',
)  # fmt: skip


@dataclass(frozen=True)
class Import:
    module: str  # importing module, e.g. 'poa_gres_ros.bag.timeline'
    target: str  # imported module or name, e.g. 'poa_gres_ros.core.results'
    top_level: bool  # at module level (False: inside a function or method)
    line: int


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix('').parts
    return '.'.join(parts[:-1] if parts[-1] == '__init__' else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(PKG.rglob('*.py')) if '__pycache__' not in p.parts}


def _imports(name: str, path: Path) -> list[Import]:
    tree = ast.parse(path.read_text(encoding='utf-8'), str(path))
    top = {id(node) for node in tree.body}
    package = name if path.name == '__init__.py' else name.rpartition('.')[0]
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ''
            if node.level:
                anchor = package.split('.')[: len(package.split('.')) - node.level + 1]
                base = '.'.join([*anchor, base] if base else anchor)
            targets = [f'{base}.{a.name}' for a in node.names]
        else:
            continue
        out += [Import(name, t, id(node) in top, node.lineno) for t in targets]
    return out


def _all_imports() -> list[Import]:
    return [i for name, path in _modules().items() for i in _imports(name, path)]


def _layer(module: str) -> str | None:
    parts = module.split('.')
    return parts[1] if parts[0] == 'poa_gres_ros' and len(parts) > 1 else None


def _readme_table() -> dict[str, set[str] | None]:
    """layer -> the layers it may import (None: every layer) from the README's map."""
    text = (ROOT / 'README.md').read_text(encoding='utf-8')
    section = text.split('### Repository map', 1)[1]
    table = {}
    for row in re.findall(r'^\| `(\w+)` \|[^|]*\| ([^|]*) \|$', section, re.M):
        layer, allowed = row
        if allowed.startswith('every layer'):
            table[layer] = None
        elif allowed.strip() == '(nothing)':
            table[layer] = set()
        else:
            table[layer] = {a.strip() for a in allowed.split(',')}
    return table


def test_readme_map_lists_every_package():
    table = _readme_table()
    packages = {p.parent.name for p in PKG.glob('*/__init__.py')}
    assert set(table) == packages, 'README "Repository map" rows differ from poa_gres_ros/*/'
    for layer, allowed in table.items():
        assert allowed is None or allowed <= set(table) | {'msg'}, (layer, allowed)


def test_every_import_follows_the_layer_table():
    table = _readme_table()
    wrong = []
    for imp in _all_imports():
        src, dst = _layer(imp.module), _layer(imp.target)
        if src is None or dst is None or src == dst or dst == '__version__':
            continue
        allowed = table[src]
        if allowed is not None and dst not in allowed:
            wrong.append(f'{imp.module}:{imp.line} ({src}) imports {imp.target} ({dst})')
    assert wrong == [], 'imports against the README layer table:\n' + '\n'.join(wrong)


def test_no_import_cycles_between_modules():
    modules = _modules()
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for imp in _all_imports():
        target = imp.target
        while target and target not in modules:  # 'pkg.mod.name' -> 'pkg.mod'
            target = target.rpartition('.')[0]
        if target and target != imp.module and not imp.module.startswith(target + '.'):
            graph[imp.module].add(target)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles = []

    def visit(v):  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                cycles.append(sorted(comp))

    for v in graph:
        if v not in index:
            visit(v)
    assert cycles == [], f'modules that import each other (directly or through others): {cycles}'


def test_only_the_ros_layer_imports_ros():
    offenders = [
        f'{imp.module}:{imp.line} imports {imp.target}'
        for imp in _all_imports()
        if _layer(imp.module) != 'ros'
        and (imp.target.split('.')[0] in ROS_PACKAGES or imp.target.startswith('poa_gres_ros.msg'))
    ]
    assert offenders == [], f'ROS imports outside poa_gres_ros/ros: {offenders}'


@pytest.mark.parametrize('init', sorted(PKG.rglob('__init__.py')), ids=lambda p: str(p.parent))
def test_every_package_docstring_maps_its_modules(init):
    doc = ast.get_docstring(ast.parse(init.read_text(encoding='utf-8'))) or ''
    members = sorted(
        p.stem if p.is_file() else p.name
        for p in init.parent.iterdir()
        if (p.suffix == '.py' and p.stem != '__init__') or (p / '__init__.py').is_file()
    )
    missing = [m for m in members if f'``{m}``' not in doc]
    assert doc and missing == [], f'{init}: the docstring does not describe {missing}'


def test_library_imports_without_ros():
    mods = [m for m in _modules() if _layer(m) not in ('ros', 'msg')]
    assert 'poa_gres_ros.core.results' in mods
    code = (
        'import sys\n'
        f'for name in {ROS_PACKAGES!r}:\n'
        '    sys.modules[name] = None  # any import of it now raises ImportError\n'
        f'import importlib\nfor m in {mods!r}:\n    importlib.import_module(m)\n'
    )
    res = subprocess.run(
        [sys.executable, '-c', code], capture_output=True, text=True, timeout=300, cwd=ROOT
    )
    assert res.returncode == 0, res.stderr[-3000:]
