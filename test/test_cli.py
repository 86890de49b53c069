"""The poa-gres command: every verb has --help; info reports the environment."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

from poa_gres_ros.tools import cli


def _run(*args):
    exe = shutil.which('poa-gres')
    argv = [exe, *args] if exe else [sys.executable, '-m', 'poa_gres_ros.tools.cli', *args]
    return subprocess.run(argv, capture_output=True, text=True, timeout=120)


def test_console_script_help_lists_verbs():
    res = _run('--help')
    assert res.returncode == 0, res.stderr
    verbs = [m.VERB for m in cli._verb_modules()]
    assert 'info' in verbs
    for verb in verbs:
        assert verb in res.stdout


def test_every_verb_has_help(capsys):
    for mod in cli._verb_modules():
        try:
            cli.main([mod.VERB, '--help'])
        except SystemExit as exc:
            assert exc.code == 0, mod.VERB
        out = capsys.readouterr().out
        assert out.startswith('usage: poa-gres ' + mod.VERB), out[:200]


def test_info_json_reports_versions():
    res = _run('info', '--json')
    assert res.returncode == 0, res.stderr
    info = json.loads(res.stdout)
    assert info['python'].startswith('3.')
    assert info['torch'][0].isdigit()
    assert 'unavailable' in info['tensorrt'] or info['tensorrt'][0].isdigit()


def test_unknown_verb_fails():
    res = _run('no-such-verb')
    assert res.returncode == 2
    assert 'invalid choice' in res.stderr
