"""Every citation in the repository resolves: a ``docs/...md#anchor`` (or a Markdown link) names
a file of this repository and a heading or ``<a id>`` in it, and nothing cites documents a user
does not have (an unpublished spec, notes outside the repository, issue numbers, dates).
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TEXT_SUFFIXES = {
    '.py',
    '.md',
    '.msg',
    '.yaml',
    '.yml',
    '.txt',
    '.cpp',
    '.hpp',
    '.sh',
    '.xml',
    '.toml',
}
TEXT_NAMES = {'Makefile', 'CMakeLists.txt', 'gres_node', 'speech_node', 'poa-gres', 'run'}

CITATION = re.compile(r'(?<![\w./])((?:docs/[\w.-]+|README|[\w.-]*MODEL_CARD)\.md)(?:#([\w-]+))?')
MD_LINK = re.compile(r'\]\(([^)\s]*?)(?:#([\w-]+))?\)')
FORBIDDEN = {
    'a section sign (cite a docs/ anchor instead)': re.compile('\u00a7'),
    'the unpublished method spec': re.compile(r'instalign-spec|\bspec §', re.I),
    'notes outside the repository': re.compile(
        r'architecture\.md|field[- ]faults?\b|pip notes|\.\./shared/|shared notes', re.I
    ),
    'an issue number': re.compile(r'\bissues? #?\d+', re.I),
    'a date': re.compile(r'\b20\d\d-\d\d-\d\d\b'),
    "the spec's confidence tags": re.compile(r'\[G\]|\[S\]'),
}


def _files() -> list[Path]:
    out = subprocess.run(
        ['git', 'ls-files', '--cached', '--others', '--exclude-standard'],
        cwd=ROOT, capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    paths = [ROOT / p for p in out]
    return [
        p for p in paths
        if p.is_file() and (p.suffix in TEXT_SUFFIXES or p.name in TEXT_NAMES)
        and p != Path(__file__).resolve()
    ]  # fmt: skip


def _slug(heading: str) -> str:
    """GitHub's anchor of a Markdown heading."""
    text = re.sub(r'[^\w\- ]', '', heading.strip().lower())
    return text.replace(' ', '-')


def _anchors(md: Path) -> set[str]:
    text = md.read_text(encoding='utf-8')
    text = re.sub(r'^```.*?^```', '', text, flags=re.M | re.S)  # no headings in code blocks
    heads = {_slug(h) for h in re.findall(r'^#{1,6} +(.+?) *#*$', text, re.M)}
    return heads | set(re.findall(r'<a id="([\w-]+)"', text))


def _check(target: Path, anchor: str | None, where: str, bad: list[str]) -> None:
    if not target.is_file():
        bad.append(f'{where}: {target.relative_to(ROOT)} does not exist')
    elif anchor and anchor not in _anchors(target):
        bad.append(f'{where}: no section #{anchor} in {target.relative_to(ROOT)}')


def test_citations_resolve():
    bad: list[str] = []
    checked = 0
    for path in _files():
        for lineno, line in enumerate(path.read_text(encoding='utf-8').splitlines(), 1):
            where = f'{path.relative_to(ROOT)}:{lineno}'
            for m in CITATION.finditer(line):
                name, anchor = m.groups()
                if 'MODEL_CARD' in name and '/' not in name:
                    target = next(ROOT.glob(f'models/*/{name}'), ROOT / name)
                else:
                    target = ROOT / name
                _check(target, anchor, where, bad)
                checked += 1
            if path.suffix != '.md':
                continue
            for m in MD_LINK.finditer(line):
                link, anchor = m.groups()
                if re.match(r'[a-z]+:', link) or (not link and not anchor):
                    continue  # URLs
                target = (path.parent / link).resolve() if link else path
                if target.is_dir() or target.suffix != '.md':
                    if not target.exists():
                        bad.append(f'{where}: {link} does not exist')
                    continue
                _check(target, anchor, where, bad)
                checked += 1
    assert checked > 50, 'the citation scan found almost nothing: is the pattern still right?'
    assert bad == [], 'citations that do not resolve:\n' + '\n'.join(bad)


def test_nothing_cites_what_users_do_not_have():
    bad = []
    for path in _files():
        for lineno, line in enumerate(path.read_text(encoding='utf-8').splitlines(), 1):
            for what, pattern in FORBIDDEN.items():
                if pattern.search(line):
                    bad.append(f'{path.relative_to(ROOT)}:{lineno}: {what}: {line.strip()[:90]}')
    assert bad == [], '\n'.join(bad)


def test_the_checker_sees_a_broken_citation():
    good, missing = 'docs/method.md#losses', 'docs/method.md#no-such-section'
    bad: list[str] = []
    for cite in (good, missing, 'docs/no_such_file.md'):
        name, _, anchor = cite.partition('#')
        _check(ROOT / name, anchor or None, 'probe', bad)
    assert bad == [
        'probe: no section #no-such-section in docs/method.md',
        'probe: docs/no_such_file.md does not exist',
    ]
    assert _slug('gRefCOCO metrics') == 'grefcoco-metrics'
    assert _slug('1. Frame, units and back-projection') == '1-frame-units-and-back-projection'
