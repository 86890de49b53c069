"""NodeStats snapshot -> diagnostic_msgs/DiagnosticArray for /diagnostics.

One DiagnosticStatus named ``<node full name>: inference`` with the lifecycle state, model,
backend, the counters (received, processed, dropped_stale, rejected, no_instruction, errors,
instructions), input/output rates in Hz and latency p50/p90/max in ms (from receipt, from the
image header stamp, in the model). Level: OK; WARN when frames were rejected or failed since
the previous report, when the image QoS matches no publisher, or when active without input.
"""

from __future__ import annotations

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue


def _fmt(value) -> str:
    if isinstance(value, float):
        return f'{value:.3f}'
    return str(value)


def build_diagnostics(
    stamp,
    name: str,
    hardware_id: str,
    snapshot: dict,
    previous: dict | None,
    extra: dict,
    problems: list[str],
) -> DiagnosticArray:
    """Build the array.

    Args:
        stamp: builtin_interfaces/Time of the report (node clock).
        name: status name; hardware_id: e.g. the model name.
        snapshot: :meth:`NodeStats.snapshot` now; previous: the one of the previous report
            (to report rejects/errors per period), or None.
        extra: further key/values (lifecycle state, model, backend, image topic, QoS).
        problems: human-readable warnings (e.g. a QoS mismatch) that make the level WARN.
    """
    previous = previous or {}
    problems = list(problems)
    for key in ('rejected', 'errors'):
        delta = snapshot.get(key, 0) - previous.get(key, 0)
        if delta > 0:
            problems.append(f'{delta} frame(s) {key} since the last report')
    level = DiagnosticStatus.WARN if problems else DiagnosticStatus.OK
    message = '; '.join(problems) if problems else 'ok'
    values = [KeyValue(key=k, value=_fmt(v)) for k, v in extra.items()]
    values += [KeyValue(key=k, value=_fmt(v)) for k, v in sorted(snapshot.items())]
    status = DiagnosticStatus(
        level=level, name=name, message=message, hardware_id=hardware_id, values=values
    )
    arr = DiagnosticArray(status=[status])
    arr.header.stamp = stamp
    return arr
