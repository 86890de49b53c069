"""PCM audio <-> float32 mono at 16 kHz, and WAV files (no ROS here).

The speech node receives ``poa_gres_ros/msg/AudioData`` (fields ``sample_rate``, ``channels``,
``sample_format``, ``data``; see msg/AudioData.msg). This module turns those fields into the one
signal every model here wants: float32 mono samples in [-1, 1] at 16 kHz
(:data:`TARGET_RATE_HZ`, the rate of Silero VAD and Whisper).

Formats are the GStreamer / audio_common names:

=========  ===============  ======================  ==========================
name       sample           bytes per sample        scale to [-1, 1]
=========  ===============  ======================  ==========================
``S16LE``  signed int16 LE  2                       x / 32768
``S32LE``  signed int32 LE  4                       x / 2147483648
``F32LE``  float32 LE       4                       as is (clipped to [-1, 1])
``U8``     unsigned int8    1                       (x - 128) / 128
=========  ===============  ======================  ==========================

Downmixing averages the channels. Resampling uses scipy.signal.resample_poly (polyphase FIR
with a Kaiser window), the rational factor reduced with gcd. WAV files are read and written
with the standard-library ``wave`` module (PCM 8/16/32-bit integer only).
"""

from __future__ import annotations

import math
import wave
from pathlib import Path

import numpy as np

TARGET_RATE_HZ = 16000
"""Sample rate of everything after :func:`to_mono_16k`, in hertz."""

MIN_RATE_HZ = 8000
MAX_RATE_HZ = 192000
MAX_CHANNELS = 32

# name -> (numpy dtype, offset, scale): float = (x - offset) / scale
SAMPLE_FORMATS: dict[str, tuple[str, float, float]] = {
    'S16LE': ('<i2', 0.0, 32768.0),
    'S32LE': ('<i4', 0.0, 2147483648.0),
    'F32LE': ('<f4', 0.0, 1.0),
    'U8': ('u1', 128.0, 128.0),
}
_WAV_WIDTH_TO_FORMAT = {1: 'U8', 2: 'S16LE', 4: 'S32LE'}


def bytes_per_sample(sample_format: str) -> int:
    """Bytes of one sample of one channel in ``sample_format`` (e.g. 2 for 'S16LE').

    Raises ValueError for a format not in :data:`SAMPLE_FORMATS`.
    """
    return np.dtype(_format_entry(sample_format)[0]).itemsize


def _format_entry(sample_format: str) -> tuple[str, float, float]:
    try:
        return SAMPLE_FORMATS[sample_format]
    except (KeyError, TypeError):
        raise ValueError(
            f'unsupported sample_format {sample_format!r}; use one of {sorted(SAMPLE_FORMATS)}'
        ) from None


def check_stream_format(sample_rate: int, channels: int, sample_format: str) -> None:
    """Validate the three format fields of an AudioData message.

    Raises ValueError naming the bad field: sample_rate outside [8000, 192000] Hz, channels
    outside [1, 32], or an unknown sample_format.
    """
    _format_entry(sample_format)
    if not MIN_RATE_HZ <= int(sample_rate) <= MAX_RATE_HZ:
        raise ValueError(
            f'unsupported sample_rate {sample_rate} Hz; use {MIN_RATE_HZ}..{MAX_RATE_HZ} Hz'
        )
    if not 1 <= int(channels) <= MAX_CHANNELS:
        raise ValueError(f'unsupported channels {channels}; use 1..{MAX_CHANNELS}')


def decode_pcm(
    data: bytes | bytearray | memoryview, sample_format: str, channels: int
) -> np.ndarray:
    """Interleaved PCM bytes -> float32 samples of shape ``(N, channels)`` in [-1, 1].

    ``data`` must hold a whole number of frames: ``len(data) % (channels * bytes_per_sample)
    == 0`` (an odd byte count for S16LE is rejected, never truncated). NaN/inf in F32LE
    become 0 and values are clipped to [-1, 1].
    Raises ValueError for an unknown format, channels < 1 or a partial frame.
    """
    dtype, offset, scale = _format_entry(sample_format)
    if int(channels) < 1:
        raise ValueError(f'channels must be >= 1, got {channels}')
    frame_bytes = np.dtype(dtype).itemsize * int(channels)
    buf = memoryview(data).cast('B')
    if len(buf) % frame_bytes:
        raise ValueError(
            f'{len(buf)} bytes is not a whole number of {sample_format} frames of '
            f'{channels} channel(s) ({frame_bytes} bytes each)'
        )
    raw = np.frombuffer(buf, dtype=dtype)
    x = (raw.astype(np.float32) - np.float32(offset)) / np.float32(scale)
    if sample_format == 'F32LE':
        x = np.clip(np.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0), -1.0, 1.0)
    return x.reshape(-1, int(channels))


def encode_pcm(samples: np.ndarray, sample_format: str) -> bytes:
    """Float samples ``(N,)`` or ``(N, C)`` in [-1, 1] -> interleaved PCM bytes.

    The inverse of :func:`decode_pcm` (values are clipped to [-1, 1] and rounded for the
    integer formats). Raises ValueError for an unknown format or an array of ndim > 2.
    """
    dtype, offset, scale = _format_entry(sample_format)
    x = np.asarray(samples, dtype=np.float64)
    if x.ndim > 2:
        raise ValueError(f'samples must be (N,) or (N, C), got shape {x.shape}')
    x = np.clip(x, -1.0, 1.0)
    if sample_format == 'F32LE':
        return x.astype('<f4').tobytes()
    info = np.iinfo(np.dtype(dtype))
    q = np.clip(np.round(x * scale + offset), info.min, info.max)
    return q.astype(dtype).tobytes()


def downmix(samples: np.ndarray) -> np.ndarray:
    """``(N, C)`` float samples -> ``(N,)`` float32, the mean over channels (``(N,)`` passes)."""
    x = np.asarray(samples, dtype=np.float32)
    if x.ndim == 1:
        return x
    if x.ndim != 2:
        raise ValueError(f'samples must be (N,) or (N, C), got shape {x.shape}')
    return x.mean(axis=1, dtype=np.float32) if x.shape[1] > 1 else x[:, 0]


def resample(samples: np.ndarray, rate_in_hz: int, rate_out_hz: int = TARGET_RATE_HZ) -> np.ndarray:
    """Resample mono ``(N,)`` float samples -> ``(round(N * out / in),)`` float32.

    scipy.signal.resample_poly with up/down = out/in reduced by gcd (anti-aliasing FIR
    included). Returns the input unchanged when the rates are equal. Note: each call filters
    its own block, so resample whole utterances or long blocks rather than 1 ms slivers.
    Raises ValueError for a rate <= 0.
    """
    from scipy.signal import resample_poly

    rate_in_hz, rate_out_hz = int(rate_in_hz), int(rate_out_hz)
    if rate_in_hz <= 0 or rate_out_hz <= 0:
        raise ValueError(f'sample rates must be > 0, got {rate_in_hz} -> {rate_out_hz}')
    x = np.asarray(samples, dtype=np.float32)
    if rate_in_hz == rate_out_hz or x.size == 0:
        return x
    g = math.gcd(rate_in_hz, rate_out_hz)
    return resample_poly(x, rate_out_hz // g, rate_in_hz // g).astype(np.float32)


class StreamResampler:
    """Chunk-by-chunk resampling that matches resampling the whole stream at once.

    resample_poly filters each call's block with zero padding at both ends, so resampling
    100 ms chunks independently leaves a click at every chunk border. This class keeps the
    last input samples and emits only the output samples whose FIR support (half length
    ``10 * max(up, down)`` taps at the upsampled rate, resample_poly's default) lies inside
    the samples seen so far; the rest waits for the next chunk or :meth:`flush`. The emitted
    stream equals ``resample(whole_signal, rate_in_hz, rate_out_hz)`` (float32 rounding
    aside) with a delay of about ``10 * max(up, down) / up`` input samples (1.9 ms for
    48 kHz -> 16 kHz).
    """

    def __init__(self, rate_in_hz: int, rate_out_hz: int = TARGET_RATE_HZ):
        if int(rate_in_hz) <= 0 or int(rate_out_hz) <= 0:
            raise ValueError(f'sample rates must be > 0, got {rate_in_hz} -> {rate_out_hz}')
        g = math.gcd(int(rate_in_hz), int(rate_out_hz))
        self.rate_in_hz, self.rate_out_hz = int(rate_in_hz), int(rate_out_hz)
        self._up, self._down = self.rate_out_hz // g, self.rate_in_hz // g
        self._half = 10 * max(self._up, self._down)
        self.reset()

    def reset(self) -> None:
        """Forget the stream (start a new one at input sample 0)."""
        self._buf = np.zeros(0, np.float32)
        self._buf_start = 0  # absolute input index of _buf[0], a multiple of _down
        self._next_out = 0  # absolute output index of the next sample to emit

    def push(self, samples: np.ndarray) -> np.ndarray:
        """Add mono ``(N,)`` float samples; return the ``(M,)`` float32 output now final."""
        x = np.asarray(samples, dtype=np.float32).reshape(-1)
        if self._up == self._down:
            return x
        self._buf = np.concatenate([self._buf, x])
        return self._emit(final=False)

    def flush(self) -> np.ndarray:
        """Emit the held-back tail (zero padding after the end, like a one-shot call)."""
        if self._up == self._down:
            return np.zeros(0, np.float32)
        out = self._emit(final=True)
        self.reset()
        return out

    def _emit(self, final: bool) -> np.ndarray:
        from scipy.signal import resample_poly

        up, down, half = self._up, self._down, self._half
        n = len(self._buf)
        if n == 0:
            return np.zeros(0, np.float32)
        base = self._buf_start * up // down
        if final:
            last = -(-n * up // down) - 1  # resample_poly output length - 1
        else:
            last = ((n - 1) * up - half) // down  # support inside the buffer
        first = self._next_out - base
        if last < first:
            return np.zeros(0, np.float32)
        y = resample_poly(self._buf, up, down)[first : last + 1].astype(np.float32)
        self._next_out += len(y)
        # keep the input that the next output's left FIR half still needs
        keep_from = max(0, (self._next_out * down - half) // up - 1)
        keep_from = keep_from // down * down
        if keep_from > self._buf_start:
            self._buf = self._buf[keep_from - self._buf_start :]
            self._buf_start = keep_from
        return y


def to_mono_16k(
    data: bytes | bytearray | memoryview, sample_rate: int, channels: int, sample_format: str
) -> np.ndarray:
    """AudioData fields -> ``(N,)`` float32 mono at 16 kHz in [-1, 1].

    decode (:func:`decode_pcm`) -> downmix (mean of channels) -> resample
    (:func:`resample`). Raises ValueError (from :func:`check_stream_format` or
    :func:`decode_pcm`) for an unsupported rate, channel count, format or a partial frame.
    """
    check_stream_format(sample_rate, channels, sample_format)
    mono = downmix(decode_pcm(data, sample_format, channels))
    return np.clip(resample(mono, sample_rate, TARGET_RATE_HZ), -1.0, 1.0)


def read_wav(path: str | Path) -> tuple[np.ndarray, int]:
    """Read a PCM WAV file -> (samples ``(N, C)`` float32 in [-1, 1], sample rate in Hz).

    8-bit (unsigned), 16-bit and 32-bit integer PCM via the stdlib ``wave`` module.
    Raises FileNotFoundError if missing, ValueError for a non-PCM or 24-bit file.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f'WAV file not found: {path}')
    try:
        with wave.open(str(path), 'rb') as w:
            width, channels, rate = w.getsampwidth(), w.getnchannels(), w.getframerate()
            frames = w.readframes(w.getnframes())
    except (wave.Error, EOFError) as exc:
        raise ValueError(f'{path}: not a PCM WAV file the wave module can read ({exc})') from exc
    if width not in _WAV_WIDTH_TO_FORMAT:
        raise ValueError(f'{path}: {8 * width}-bit WAV is not supported; use 8, 16 or 32-bit PCM')
    return decode_pcm(frames, _WAV_WIDTH_TO_FORMAT[width], channels), rate


def read_wav_mono_16k(path: str | Path) -> np.ndarray:
    """Read a WAV file -> ``(N,)`` float32 mono at 16 kHz (see :func:`read_wav`)."""
    samples, rate = read_wav(path)
    check_stream_format(rate, samples.shape[1], 'S16LE')
    return np.clip(resample(downmix(samples), rate, TARGET_RATE_HZ), -1.0, 1.0)


def write_wav(path: str | Path, samples: np.ndarray, rate_hz: int = TARGET_RATE_HZ) -> None:
    """Write float samples ``(N,)`` or ``(N, C)`` in [-1, 1] as a 16-bit PCM WAV file."""
    x = np.asarray(samples, dtype=np.float32)
    channels = 1 if x.ndim == 1 else x.shape[1]
    with wave.open(str(path), 'wb') as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(int(rate_hz))
        w.writeframes(encode_pcm(x, 'S16LE'))
