"""What gres_node says about binding images to instructions (docs/binding.md): the rule in
force (logged when it changes, reported in diagnostics), frames skipped because there is no
instruction (a throttled warning naming the instruction topics the node actually subscribes,
fully qualified, so an instruction sent outside the node's namespace is never ignored in
silence), and the node clock jumping back (an rclpy time-jump callback: the instruction history
restarts on the new time line, logged)."""

from __future__ import annotations

from rclpy.clock import ClockChange, JumpThreshold
from rclpy.duration import Duration

from poa_gres_ros.ros.instruction_state import RULE_STAMP, Binding, InstructionState
from poa_gres_ros.ros.log_text import short_text
from poa_gres_ros.ros.node_stats import KeyedThrottle, NodeStats

# A /clock step back of at least this is a jump (a loop, a restart); smaller steps are a
# player's rounding (integer nanoseconds from float seconds), not a new time line.
MIN_JUMP_NS = 1_000_000


class BindingNotices:
    """Counters, log lines and diagnostics text about binding, for one node.

    Args:
        node: the rclpy node (logger, namespace, graph queries).
        instructions: its InstructionState. stats: its NodeStats (bound_by_* counters).
        throttle: its KeyedThrottle (one warning per key and period).
        image_topic: the resolved image topic (for messages).
    """

    def __init__(self, node, instructions: InstructionState, stats: NodeStats,
                 throttle: KeyedThrottle, image_topic: str):  # fmt: skip
        self._node, self._instructions, self._stats = node, instructions, stats
        self._throttle, self._image_topic = throttle, image_topic
        self.instruction_subs: list = []  # set at configure
        self.rule = ''  # the rule of the newest image, for diagnostics
        self._reason = ''
        self._jump_handle = node.get_clock().create_jump_callback(
            JumpThreshold(min_forward=None, min_backward=Duration(nanoseconds=-MIN_JUMP_NS)),
            post_callback=self._on_clock_jump,
        )

    def _on_clock_jump(self, jump) -> None:
        """The node clock stepped back (``/clock`` of a looped replay) or changed source (runs
        in the /clock callback, after the new time is set)."""
        try:
            now_ns = self._node.get_clock().now().nanoseconds
            self._instructions.clock_jumped(now_ns)
            self._stats.count('clock_jumps')
            if jump.clock_change == ClockChange.ROS_TIME_NO_CHANGE:
                what = f'jumped back {-jump.delta.nanoseconds / 1e9:.3f} s to {now_ns / 1e9:.3f} s'
            else:
                what = f'changed source ({jump.clock_change.name}), now {now_ns / 1e9:.3f} s'
            current = self._instructions.current()
            keep = (
                f'instruction {current.id} ({short_text(current.text)}) stays current until '
                'the next one'
                if current is not None
                else 'no instruction is current'
            )
            if self._throttle.ready('clock_jump')[0]:
                self._node.get_logger().info(
                    f'node clock {what}: instructions before it no longer bind by header '
                    f'stamp; {keep}'
                )
        except Exception as exc:  # noqa: BLE001 - a raising jump callback stops later ones
            if self._throttle.ready('clock_jump_error')[0]:
                self._node.get_logger().error(f'clock jump handling failed: {exc!r}')

    def topics(self) -> str:
        """The fully qualified instruction topics subscribed, e.g. '/robot1/instruction and
        /robot1/instruction/spoken'."""
        return ' and '.join(s.topic_name for s in self.instruction_subs) or '(none yet)'

    def note(self, binding: Binding, tolerance_s: float) -> None:
        """Count the image's rule; log the rule when it differs from the previous image's
        (each reason at most every throttle period, should it flap)."""
        self._stats.count('bound_by_stamp' if binding.rule == RULE_STAMP else 'bound_by_receipt')
        self.rule = binding.describe(tolerance_s)
        if binding.reason != self._reason:
            self._reason = binding.reason
            if self._throttle.ready(f'binding:{binding.reason}')[0]:
                self._node.get_logger().info(f'binding images to instructions by {self.rule}')

    def no_instruction_text(self) -> str:
        """Why images are skipped and where to publish an instruction."""
        why = (
            'no instruction was received (or the last one was empty, which clears)'
            if self._instructions.current() is None
            else 'the current instruction came after these images (header stamps) or is '
            'older than instruction_timeout_s'
        )
        text = f'images on {self._image_topic} are skipped: {why}; publish one on {self.topics()}'
        ns = self._node.get_namespace()
        if ns != '/' and self._node.count_publishers('/instruction') > 0:
            text += (
                f' (/instruction has publishers, but this node is in namespace {ns}: publish '
                'there or remap)'
            )
        return text

    def warn_no_instruction(self) -> None:
        """A throttled warning for an image skipped without an instruction."""
        ok, suppressed = self._throttle.ready('no_instruction')
        if ok:
            more = (
                f' ({suppressed} more images skipped since the last warning)' if suppressed else ''
            )
            self._node.get_logger().warning(self.no_instruction_text() + more)
