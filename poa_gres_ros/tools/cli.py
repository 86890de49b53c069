"""The ``poa-gres`` command: one verb per module in ``poa_gres_ros.tools``.

A verb module defines ``VERB`` (the sub-command name), ``HELP`` (one line),
``add_arguments(parser)`` and ``run(args) -> int``. Verbs import heavy libraries (torch,
rclpy, pybullet) inside ``run`` so that ``poa-gres --help`` stays fast and works on
machines without the optional extras. Discovery is automatic: adding ``tools/<verb>.py``
adds the verb, no registry to edit.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys

import poa_gres_ros.tools as _tools_pkg
from poa_gres_ros import __version__

_NOT_VERBS = {'cli'}


def _verb_modules():
    mods = []
    for info in pkgutil.iter_modules(_tools_pkg.__path__):
        if info.name.startswith('_') or info.name in _NOT_VERBS:
            continue
        mod = importlib.import_module(f'{_tools_pkg.__name__}.{info.name}')
        if all(hasattr(mod, a) for a in ('VERB', 'HELP', 'add_arguments', 'run')):
            mods.append(mod)
    return sorted(mods, key=lambda m: m.VERB)


def build_parser() -> argparse.ArgumentParser:
    """Return the top-level parser with one sub-parser per discovered verb."""
    parser = argparse.ArgumentParser(
        prog='poa-gres',
        description='Generalized referring expression segmentation (InstAlign / POA): '
        'data, training, evaluation, export and replay tools.',
    )
    parser.add_argument('--version', action='version', version=f'%(prog)s {__version__}')
    sub = parser.add_subparsers(dest='verb', metavar='VERB')
    sub.required = True
    for mod in _verb_modules():
        p = sub.add_parser(
            mod.VERB,
            help=mod.HELP,
            description=mod.__doc__ or mod.HELP,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        mod.add_arguments(p)
        p.set_defaults(_run=mod.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``poa-gres``. Returns the process exit status.

    Library errors (``ValueError``, ``FileNotFoundError``, ``RuntimeError``) are printed as
    one line on stderr with exit status 2; anything else propagates with its traceback.
    """
    args = build_parser().parse_args(argv)
    try:
        return int(args._run(args) or 0)
    except (ValueError, FileNotFoundError, RuntimeError) as exc:
        print(f'poa-gres {args.verb}: error: {exc}', file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f'poa-gres {args.verb}: interrupted', file=sys.stderr)
        return 130


if __name__ == '__main__':
    sys.exit(main())
