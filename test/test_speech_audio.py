"""poa_gres_ros.speech audio utilities, Silero VAD cutting and the WER metric (no ROS)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from poa_gres_ros.speech import audio
from poa_gres_ros.speech.vad import SileroVad, UtteranceSegmenter, VadConfig
from poa_gres_ros.speech.wer import corpus_wer, normalise_words, word_errors

DATA = Path(__file__).resolve().parent / 'data' / 'speech'
FIXTURE = DATA / '04_grab_the_biggest_cube.wav'


def sine(freq_hz: float, rate_hz: int, seconds: float, amp: float = 0.5) -> np.ndarray:
    t = np.arange(int(rate_hz * seconds)) / rate_hz
    return (amp * np.sin(2 * np.pi * freq_hz * t)).astype(np.float32)


# ----------------------------------------------------------------------------------- formats
@pytest.mark.parametrize('fmt', ['S16LE', 'S32LE', 'F32LE', 'U8'])
def test_pcm_round_trip(fmt):
    x = np.stack([sine(440, 16000, 0.1), sine(880, 16000, 0.1, 0.25)], axis=1)
    data = audio.encode_pcm(x, fmt)
    assert len(data) == x.size * audio.bytes_per_sample(fmt)
    y = audio.decode_pcm(data, fmt, 2)
    assert y.shape == x.shape and y.dtype == np.float32
    tol = {'S16LE': 1 / 32768, 'S32LE': 1e-7, 'F32LE': 1e-7, 'U8': 1 / 128}[fmt]
    assert np.abs(y - x).max() <= tol


def test_decode_known_values_and_clipping():
    s16 = np.array([-32768, 0, 16384, 32767], '<i2').tobytes()
    assert audio.decode_pcm(s16, 'S16LE', 1)[:, 0].tolist() == [-1.0, 0.0, 0.5, 32767 / 32768]
    assert audio.decode_pcm(bytes([0, 128, 255]), 'U8', 1)[:, 0].tolist() == [-1.0, 0.0, 127 / 128]
    f32 = np.array([2.0, np.nan, -np.inf], '<f4').tobytes()
    assert audio.decode_pcm(f32, 'F32LE', 1)[:, 0].tolist() == [1.0, 0.0, 0.0]


def test_bad_audio_is_rejected_with_a_clear_error():
    with pytest.raises(ValueError, match='sample_format'):
        audio.decode_pcm(b'\0\0', 'MP3', 1)
    with pytest.raises(ValueError, match='whole number'):
        audio.decode_pcm(b'\0\0\0', 'S16LE', 1)  # odd byte count
    with pytest.raises(ValueError, match='whole number'):
        audio.decode_pcm(b'\0\0\0\0\0\0', 'S16LE', 2)  # 1.5 stereo frames
    with pytest.raises(ValueError, match='sample_rate'):
        audio.to_mono_16k(b'\0\0', 1000, 1, 'S16LE')
    with pytest.raises(ValueError, match='channels'):
        audio.to_mono_16k(b'\0\0', 16000, 0, 'S16LE')


def test_downmix_averages_channels():
    x = np.array([[1.0, 0.0], [0.5, -0.5]], np.float32)
    assert audio.downmix(x).tolist() == [0.5, 0.0]
    assert audio.downmix(x[:, :1]).tolist() == [1.0, 0.5]


@pytest.mark.parametrize('rate', [8000, 22050, 44100, 48000])
def test_resample_keeps_frequency_and_duration(rate):
    y = audio.resample(sine(1000, rate, 1.0), rate, 16000)
    assert len(y) == 16000
    spectrum = np.abs(np.fft.rfft(y))
    assert np.argmax(spectrum) == 1000  # 1 Hz bins over 1 s
    assert 0.45 < np.abs(y[1000:-1000]).max() < 0.55


def test_aliasing_is_filtered():
    """10 kHz (at 48 kHz) is above the 8 kHz Nyquist limit of 16 kHz: filtered, not folded."""
    y = audio.resample(sine(10000, 48000, 1.0), 48000, 16000)
    assert np.abs(y[1000:-1000]).max() < 0.005  # < -40 dB, not folded to 6 kHz


@pytest.mark.parametrize('rate', [8000, 44100, 48000, 16000])
def test_stream_resampler_matches_one_shot(rate):
    rng = np.random.default_rng(rate)
    x = rng.normal(0, 0.2, rate).astype(np.float32)
    r = audio.StreamResampler(rate, 16000)
    parts, i = [], 0
    while i < len(x):
        n = int(rng.integers(1, rate // 8))
        parts.append(r.push(x[i : i + n]))
        i += n
    parts.append(r.flush())
    y = np.concatenate(parts)
    ref = audio.resample(x, rate, 16000)
    assert y.shape == ref.shape
    np.testing.assert_allclose(y, ref, atol=1e-6)


def test_to_mono_16k_from_48k_stereo_s32():
    x = np.stack([sine(500, 48000, 0.5), sine(500, 48000, 0.5)], axis=1)
    y = audio.to_mono_16k(audio.encode_pcm(x, 'S32LE'), 48000, 2, 'S32LE')
    assert y.shape == (8000,) and y.dtype == np.float32
    np.testing.assert_allclose(y[500:-500], sine(500, 16000, 0.5)[500:-500], atol=2e-3)


def test_wav_round_trip(tmp_path):
    x = np.stack([sine(300, 48000, 0.2), sine(600, 48000, 0.2)], axis=1)
    audio.write_wav(tmp_path / 'a.wav', x, 48000)
    y, rate = audio.read_wav(tmp_path / 'a.wav')
    assert rate == 48000 and y.shape == x.shape
    assert np.abs(y - x).max() <= 1 / 32768
    mono = audio.read_wav_mono_16k(tmp_path / 'a.wav')
    assert mono.shape == (3200,)
    with pytest.raises(FileNotFoundError):
        audio.read_wav(tmp_path / 'missing.wav')
    (tmp_path / 'junk.wav').write_bytes(b'RIFFjunk')
    with pytest.raises(ValueError, match='WAV'):
        audio.read_wav(tmp_path / 'junk.wav')


def test_fixtures_are_16k_mono_s16():
    rows = (DATA / 'transcripts.tsv').read_text().splitlines()
    assert len(rows) >= 5
    for row in rows:
        name, text = row.split('\t')
        samples, rate = audio.read_wav(DATA / name)
        assert rate == 16000 and samples.shape[1] == 1 and text.strip()
        assert 2.0 < len(samples) / rate < 6.0


# ----------------------------------------------------------------------------------------- VAD
@pytest.fixture(scope='module')
def vad():
    return SileroVad()


def cut(vad, x, config=None, chunk=1600):
    seg = UtteranceSegmenter(vad, config or VadConfig())
    out = []
    for i in range(0, len(x), chunk):
        out += seg.feed(x[i : i + chunk])
    return out + seg.flush()


def test_vad_finds_the_spoken_command(vad):
    x = audio.read_wav_mono_16k(FIXTURE)  # 0.6 s silence, speech, 1.0 s silence
    probs = vad.probabilities(x)
    assert probs[:10].max() < 0.1 and probs.max() > 0.9
    (utt,) = cut(vad, x)
    assert 0.3 <= utt.start_s <= 0.6 and utt.end_s <= len(x) / 16000 - 0.6
    assert utt.speech_s > 0.8 and not utt.cut
    assert utt.duration_s == pytest.approx(utt.end_s - utt.start_s)


def test_vad_cut_does_not_depend_on_chunk_size(vad):
    x = audio.read_wav_mono_16k(FIXTURE)
    a, b = cut(vad, x, chunk=100)[0], cut(vad, x, chunk=len(x))[0]
    np.testing.assert_array_equal(a.audio, b.audio)


def test_silence_and_low_noise_give_no_utterance(vad):
    rng = np.random.default_rng(0)
    assert cut(vad, np.zeros(48000, np.float32)) == []
    assert cut(vad, rng.normal(0, 0.003, 48000).astype(np.float32)) == []


def test_min_speech_and_max_utterance(vad):
    x = audio.read_wav_mono_16k(FIXTURE)
    assert cut(vad, x, VadConfig(min_speech_ms=3000)) == []
    utts = cut(vad, x, VadConfig(max_utterance_s=0.5, min_speech_ms=100))
    assert len(utts) >= 2 and utts[0].cut
    assert all(u.duration_s <= 0.5 + 0.04 for u in utts)
    with pytest.raises(ValueError, match='threshold'):
        VadConfig(threshold=1.5).validate()


# ----------------------------------------------------------------------------------------- WER
def test_wer_normalises_and_counts_edits():
    assert normalise_words("Pick up, the RED mug. Don't!") == [
        'pick',
        'up',
        'the',
        'red',
        'mug',
        "don't",
    ]
    assert word_errors('pick up the red mug', 'Pick up the red mug.') == 0
    assert word_errors('pick up the red mug', 'pick the red cup') == 2  # del + sub
    assert word_errors('a b', 'a x b y') == 2  # two insertions
    assert corpus_wer(['a b c d', 'e f'], ['a b c d', 'e']) == (1, 6, 1 / 6)
    with pytest.raises(ValueError):
        corpus_wer(['a'], [])
