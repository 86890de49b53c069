"""The health of ``gres_node``: the /diagnostics timer, the QoS check and throttled logs.

``GresNodeHealth`` is a mixin of ``gres_node.GresNode``: ``_on_diag_timer`` (its own group, on
a steady clock so that reports go on while a bag is paused) publishes the node's statistics
through ``diagnostics.build_diagnostics``; ``_check_qos`` follows the image publishers'
reliability with image_qos 'auto' and reports subscriptions whose publishers do not match;
``_log_throttled`` logs once per cause and interval (``node_stats.KeyedThrottle``) and never
while shutting down.

It uses the node's state set up in ``GresNode.__init__`` and ``on_configure`` (``stats``,
``_throttle``, ``_images``, ``_depth``, ``_instr_subs``, ``_pubs``, ``_values``,
``_model_path``, ``_image_topic``, ``_notices``, ``_processor``, ``_prev_snapshot``,
``_qos_problem``, ``_exiting``).
"""

from __future__ import annotations

import sys

from poa_gres_ros.ros import qos as Q
from poa_gres_ros.ros.diagnostics import build_diagnostics


class GresNodeHealth:
    """Diagnostics, QoS mismatch reports and throttled logging (a mixin of ``GresNode``)."""

    def _on_diag_timer(self) -> None:
        try:
            self._check_qos()
            snap = self.stats.snapshot()
            problems = [self._qos_problem] if self._qos_problem else []
            skipped = snap['no_instruction'] - (self._prev_snapshot or {}).get('no_instruction', 0)
            if skipped > 0:
                problems.append(f'{skipped} image(s) skipped since the last report: '
                                + self._notices.no_instruction_text())  # fmt: skip
            extra = {
                'lifecycle_state': 'active' if self._processor is not None else 'inactive',
                'model_dir': str(self._model_path),
                'image_topic': self._image_topic,
                'binding_rule': self._notices.rule or 'no image yet',
                'image_qos': self._values.get('image_qos', '')
                + (f' ({self._images.qos.reliability.name})' if self._images else ''),
            }
            arr = build_diagnostics(
                self.get_clock().now().to_msg(), f'{self.get_fully_qualified_name()}: inference',
                str(self._model_path), snap, self._prev_snapshot, extra, problems,
            )  # fmt: skip
            self._prev_snapshot = snap
            self._pubs['diagnostics'].publish(arr)
        except Exception as exc:  # boundary
            self._log_throttled('diagnostics', f'diagnostics failed: {exc!r}')

    def _check_qos(self) -> None:
        """Warn when a topic we subscribe has publishers but none matches (faults #8-#11);
        with image_qos 'auto', follow the image publishers' reliability first."""
        switched = self._images.follow_publishers() if self._images is not None else None
        if switched:
            self.get_logger().info(switched)
        if self._depth is not None:
            switched_depth = self._depth.images.follow_publishers()
            if switched_depth:
                self.get_logger().info(switched_depth)
        problems = self._images.mismatches() if self._images is not None else []
        if self._depth is not None:
            problems += self._depth.images.mismatches()
        for sub, qos in zip(self._instr_subs, (Q.INSTRUCTION_QOS, Q.SPOKEN_QOS)):
            problems.append(Q.mismatch_report(self, sub.topic_name, qos))
        problems = [p for p in problems if p]
        self._qos_problem = '; '.join(problems) or None
        for problem in problems:  # keyed by the whole text: a publisher named later is new
            self._log_throttled(f'qos:{problem}', f'QoS mismatch: {problem}', warn=True)

    def _log_throttled(self, key: str, text: str, warn: bool = False) -> None:
        ok, suppressed = self._throttle.ready(key)
        if not ok or self._exiting or not self.context.ok():  # shutting down: late callbacks
            return
        if suppressed:
            text += f' ({suppressed} similar messages suppressed)'
        try:  # one call site per severity: rclpy refuses to change it between calls
            if warn:
                self.get_logger().warning(text)
            else:
                self.get_logger().error(text)
        except Exception as exc:  # never let logging take the executor down
            print(f'gres_node: logging failed ({exc!r}): {text}', file=sys.stderr)
