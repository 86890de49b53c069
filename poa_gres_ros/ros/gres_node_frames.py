"""The frame path of ``gres_node``: instruction and image callbacks, inference, publishing.

``GresNodeFrames`` is a mixin of ``gres_node.GresNode`` (see its module docstring for the
threads): the image and instruction callbacks (reentrant group) bind each frame to the current
instruction and put it in the single slot (newest wins, stale frames dropped and counted), then
trigger the guard condition; ``_on_wake`` (the inference group) takes frames from the slot, runs
them through the ``FrameProcessor`` and publishes gres/instances, gres/mask, gres/no_target,
the debug overlay and, with enable_3d, gres/points and gres/markers (only while subscribed).

It uses the node's state set up in ``GresNode.__init__`` and its lifecycle transitions
(``instructions``, ``stats``, ``_settings``, ``_slot``, ``_wake``, ``_pubs``, ``_depth``,
``_processor``, ``_predictor_lock``, ``_stopping``, ``_exiting``, ``_notices``) and
``_log_throttled`` from ``gres_node_health``.
"""

from __future__ import annotations

import dataclasses
import re
import time

from rclpy.exceptions import InvalidHandle
from std_msgs.msg import Bool, String

from poa_gres_ros.conversions.image_msgs import ImageConversionError
from poa_gres_ros.conversions.result_msgs import stamp_ns
from poa_gres_ros.core.visualize import draw_overlay
from poa_gres_ros.ros import geometry_viz
from poa_gres_ros.ros.frame_processor import Frame, FrameProcessor
from poa_gres_ros.ros.log_text import short_text
from poa_gres_ros.ros.node_stats import stamp_latency_ms
from poa_gres_ros.ros.qos import CLOCK_RECEIPT_QOS
from poa_gres_ros.ros.result_msgs import rgb8_image


class GresNodeFrames:
    """Callbacks from a received instruction or image to the published result (a mixin of
    ``GresNode``; every callback catches at its boundary and keeps the executor alive)."""

    def _on_clock(self, msg, info) -> None:
        """use_sim_time: a /clock message and when the middleware received it."""
        try:
            self._clock_receipts.observe(info.get('received_timestamp', 0), stamp_ns(msg.clock))
        except Exception as exc:  # boundary: keep the executor alive
            self._log_throttled('clock', f'/clock callback failed: {exc!r}')

    def _take_clock_backlog(self) -> None:
        """Record the /clock messages the middleware holds and the executor has not handed to
        ``_on_clock`` yet: a held executor may run the instruction callback first, and the
        /clock messages received just before the instruction are the ones that date it."""
        sub = self._clock_sub
        if sub is None:
            return
        try:
            with sub.handle:
                for _ in range(CLOCK_RECEIPT_QOS.depth):
                    taken = sub.handle.take_message(sub.msg_type, sub.raw)
                    if taken is None:
                        break
                    self._on_clock(*taken)
        except InvalidHandle:  # destroyed meanwhile (cleanup, shutdown)
            pass

    def _on_instruction(self, msg: String, info, topic: str) -> None:
        try:  # its time is when the middleware received it (the callback may run later)
            source = self.resolve_topic_name(topic)
            received = info.get('received_timestamp')
            sim = self.get_clock().ros_time_is_active
            if sim:  # system time -> the /clock time line (None: unknown, callback time)
                self._take_clock_backlog()
                received = self._clock_receipts.to_clock(received)
            instr = self.instructions.receive(msg.data, None, source, received, on_sim_clock=sim)
            if instr is None:
                self.get_logger().info(f'instruction cleared by an empty message on {source}')
                return
            self.stats.count('instructions')
            self.get_logger().info(
                f'instruction {instr.id} from {source}: {short_text(instr.text)}'
            )
            if instr.invalid_utf8:
                self.get_logger().warning(
                    f'instruction {instr.id} was not valid UTF-8; bad bytes became U+FFFD'
                )
            if self._wake is not None:
                self._wake.trigger()  # encode the text now, once
        except Exception as exc:  # boundary: keep the executor alive
            self._log_throttled('instruction', f'instruction callback failed: {exc!r}')

    def _on_image(self, msg, topic: str) -> None:
        try:
            if self._stopping.is_set():
                return
            self.stats.count('received')
            stamp = msg.header.stamp
            binding = self.instructions.bind_image(  # the node clock is read under its lock
                None, stamp_ns(stamp),
                self.get_clock().ros_time_is_active,
            )  # fmt: skip
            self._notices.note(binding, self._settings.stamp_tolerance_s)
            instr = binding.instruction
            if instr is None:
                self.stats.count('no_instruction')
                if not self._exiting:
                    self._notices.warn_no_instruction()
                return
            if self._slot.put(Frame(msg, instr, time.monotonic(), topic, binding)):
                self.stats.count('dropped_stale')
            if self._wake is not None:
                self._wake.trigger()
        except Exception as exc:  # boundary: keep the executor alive
            self._log_throttled('image', f'image callback failed: {exc!r}')

    def _on_wake(self) -> None:
        with self._predictor_lock:
            processor = self._processor
            while processor is not None and not self._stopping.is_set():
                frame = self._slot.take()
                if frame is None:
                    break
                frame = self._rebound(frame)
                if frame is None:
                    continue
                try:
                    self._process(processor, frame)
                except Exception as exc:  # boundary: a bad frame never kills the node
                    self.stats.count('errors')
                    self._log_throttled('process', f'frame from {frame.topic} failed: {exc!r}')
            current = self.instructions.current()
            if processor is not None and current is not None and not self._stopping.is_set():
                try:
                    processor.ensure_encoded(current)
                except Exception as exc:  # boundary
                    self._log_throttled('encode', f'encoding the instruction failed: {exc!r}')

    def _rebound(self, frame: Frame) -> Frame | None:
        """The frame with the instruction at its header stamp now (an instruction whose
        callback ran after the image's takes over, docs/binding.md); None if that is none."""
        instr = self.instructions.rebind(frame.binding) if frame.binding else frame.instruction
        if instr is frame.instruction:
            return frame
        self.stats.count('rebound')
        if instr is None:
            self.stats.count('no_instruction')
            return None
        return dataclasses.replace(frame, instruction=instr)

    def _process(self, processor: FrameProcessor, frame: Frame) -> None:
        settings = self._settings  # one snapshot per frame
        depth = self._depth
        if depth is not None:
            stamp = frame.msg.header.stamp
            depth.begin(stamp_ns(stamp), settings.depth_tolerance_s)
        try:
            out = processor.run(frame, settings.thresholds)
        except ImageConversionError as exc:
            self.stats.count('rejected')
            cause = re.sub(r'\d+', '#', str(exc))  # one throttle per encoding and cause
            self._log_throttled(f'convert:{cause}', f'dropped a frame from {frame.topic}: {exc}')
            return
        header = frame.msg.header
        geos = None
        if depth is not None:
            geos = depth.fill(
                out.result, out.prediction, erode_px=settings.depth_erode_px,
                min_points=settings.depth_min_points, wait_s=settings.depth_wait_s,
            )  # fmt: skip
        self._pubs['instances'].publish(out.result)
        self._pubs['mask'].publish(out.result.mask)
        self._pubs['no_target'].publish(Bool(data=out.result.no_target))
        debug = self._pubs['debug']
        if settings.publish_debug and debug.get_subscription_count() > 0:
            debug.publish(rgb8_image(draw_overlay(out.rgb, out.prediction), header))
            self.stats.count('debug_published')
        if geos is not None:
            self._publish_3d(header, out.result, geos)
        self._record_latency(frame, out.inference_ms)
        t = out.prediction.timings_ms  # node_log_level:=debug: one line per frame
        self.get_logger().debug(
            f'frame {header.stamp.sec}.{header.stamp.nanosec:09d} from {frame.topic}: '
            f'instruction {frame.instruction.id}, {len(out.result.instances)} instance(s), '
            f'no-target {out.result.no_target}; model {out.inference_ms:.0f} ms (preprocess '
            f'{t.get("preprocess", 0):.0f}, vision {t.get("vision", 0):.0f}, postprocess '
            f'{t.get("postprocess", 0):.0f})'
        )

    def _publish_3d(self, header, result, geos) -> None:
        """gres/points and gres/markers, built only while subscribed (lazy)."""
        points, marks = self._pubs['points'], self._pubs['markers']
        if points.get_subscription_count() > 0:
            points.publish(geometry_viz.point_cloud(header, geos, [i.id for i in result.instances]))
        if marks.get_subscription_count() > 0:
            marks.publish(geometry_viz.markers(header, result, geos))

    def _record_latency(self, frame: Frame, inference_ms: float) -> None:
        stamp = frame.msg.header.stamp
        stamp_ms = stamp_latency_ms(self.get_clock().now().nanoseconds, stamp.sec, stamp.nanosec)
        if stamp_ms is not None and not -1_000.0 < stamp_ms < 3_600_000.0:
            self._log_throttled(
                'stamp', f'image stamps are {stamp_ms / 1e3:.1f} s from the node clock: the '
                'camera and the node need one time base (for bag replay: ros2 bag play --clock '
                'and use_sim_time:=true); latency from the stamp is not meaningful', warn=True,
            )  # fmt: skip
            stamp_ms = None
        self.stats.record((time.monotonic() - frame.receipt_mono_s) * 1e3, stamp_ms, inference_ms)
