"""Vocabulary, recognisers (real Whisper tiny.en and pocketsphinx) and the pipeline (no ROS)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest

from poa_gres_ros.speech import vocabulary
from poa_gres_ros.speech.audio import encode_pcm, read_wav_mono_16k, resample
from poa_gres_ros.speech.pipeline import SpeechPipeline
from poa_gres_ros.speech.recognizers import (
    PocketsphinxRecognizer,
    WhisperRecognizer,
    create_recognizer,
    resolve_whisper_model,
)
from poa_gres_ros.speech.wer import word_errors

DATA = Path(__file__).resolve().parent / 'data' / 'speech'
CUBE = DATA / '04_grab_the_biggest_cube.wav'
MUG = DATA / '01_pick_up_the_red_mug.wav'
PROMPT = (
    'Pick up the mug. Grab the cup. Give me the duck. Hand me the teddy. The lego brick, the '
    'jenga block, the domino, the cube, the sphere, the ball, the soccer ball, the tray. Red, '
    'green, blue, yellow. The biggest, the smallest. Left of, right of, next to.'
)


@pytest.fixture(scope='module')
def whisper():
    return WhisperRecognizer(initial_prompt=vocabulary.build_prompt())


@pytest.fixture(scope='module')
def sphinx():
    return PocketsphinxRecognizer()


# ---------------------------------------------------------------------------------- vocabulary
def test_default_prompt_is_the_tuned_one():
    assert vocabulary.build_prompt() == PROMPT  # chosen on the dev set (data/speech/README.md)
    assert vocabulary.build_prompt([], [], [], [], []) == ''
    assert vocabulary.build_prompt(['grab'], ['cup', 'ball'], [], [], []) == (
        'Grab the cup. The ball.'
    )


def test_grammar_covers_the_tabletop_words():
    g = vocabulary.jsgf_grammar()
    assert g.startswith('#JSGF V1.0;') and 'public <command>' in g
    for word in ('jenga block', 'soccer ball', 'teddy', 'left of', 'biggest', 'yellow', 'both'):
        assert word in g
    with pytest.raises(ValueError, match='lower-case'):
        vocabulary.jsgf_grammar(vocabulary.Vocabulary(nouns=('Mug',)))


def test_pocketsphinx_accepts_the_grammar_and_knows_every_word(sphinx):
    assert sphinx.grammar == vocabulary.jsgf_grammar()
    with pytest.raises(ValueError, match='zorblax'):
        PocketsphinxRecognizer(vocabulary=vocabulary.Vocabulary(nouns=('zorblax',)))


# -------------------------------------------------------------------------------- recognisers
def test_whisper_transcribes_a_command_with_confidence(whisper):
    assert whisper.load_ms > 0 and whisper.initial_prompt == PROMPT
    tr = whisper.transcribe(read_wav_mono_16k(CUBE))
    assert word_errors('grab the biggest cube', tr.text) == 0, tr.text
    assert 0.5 < tr.confidence <= 1.0
    assert tr.backend == 'whisper' and tr.decode_ms > 0 and 3.0 < tr.audio_s < 4.0
    expected = np.exp(tr.details['avg_logprob']) * (1 - tr.details['no_speech_prob'])
    assert tr.confidence == pytest.approx(expected)


def test_whisper_confidence_is_low_for_a_tone(whisper):
    tone = (0.3 * np.sin(2 * np.pi * 440 * np.arange(32000) / 16000)).astype(np.float32)
    tr = whisper.transcribe(tone)
    assert tr.confidence < 0.4, tr  # measured 0.17 ('Beep. Beep.')


def test_pocketsphinx_transcribes_a_command(sphinx):
    tr = sphinx.transcribe(read_wav_mono_16k(CUBE))
    assert tr.text == 'grab the biggest cube'
    assert 0.0 < tr.confidence <= 1.0 and tr.backend == 'pocketsphinx'


def test_recognisers_reject_bad_input(sphinx):
    with pytest.raises(ValueError, match='mono'):
        sphinx.transcribe(np.zeros((100, 2), np.float32))
    with pytest.raises(ValueError, match='backend'):
        create_recognizer('vosk')
    with pytest.raises(FileNotFoundError, match='model.bin'):
        resolve_whisper_model(DATA)
    assert (resolve_whisper_model() / 'model.bin').is_file()


# ----------------------------------------------------------------------------------- pipeline
def test_pipeline_48k_stereo_stream_to_event(sphinx):
    events, done = [], threading.Event()

    def on_event(ev):
        events.append(ev)
        done.set()

    p = SpeechPipeline(sphinx, on_event, confidence_threshold=0.1)
    p.start()
    try:
        x48 = resample(read_wav_mono_16k(CUBE), 16000, 48000)
        pcm = encode_pcm(np.stack([x48, x48], axis=1), 'S16LE')
        step = 4800 * 2 * 2  # 100 ms of 48 kHz stereo S16
        for i in range(0, len(pcm), step):
            p.push_pcm(pcm[i : i + step], 48000, 2, 'S16LE')
        with pytest.raises(ValueError):
            p.push_pcm(b'\0\0\0', 48000, 2, 'S16LE')
        assert done.wait(30.0)
    finally:
        p.stop()
    (ev,) = events
    assert ev.kind == 'published' and ev.transcript.text == 'grab the biggest cube'
    assert ev.total_ms >= ev.transcript.decode_ms and ev.stream == 'topic'
    assert p.stats.published == 1 and p.stats.bad_chunks == 1 and p.stats.utterances == 1


def test_pipeline_threshold_and_full_queue(sphinx):
    events = []
    p = SpeechPipeline(sphinx, events.append, confidence_threshold=0.5, max_pending=1)
    utt_audio = np.concatenate([read_wav_mono_16k(f) for f in (CUBE, MUG, CUBE)])
    p.push_audio(utt_audio)  # worker not started: three utterances, room for one
    p.end_stream()
    assert [e.kind for e in events] == ['queue_full', 'queue_full']
    assert p.stats.queue_full == 2 and p.pending == 1
    p.confidence_threshold = 1.01  # every transcript is now below it
    p.start()
    try:
        for _ in range(300):
            if len(events) == 3:
                break
            time.sleep(0.1)
    finally:
        p.stop()
    assert events[-1].kind == 'low_confidence' and events[-1].transcript.text
    assert p.stats.low_confidence == 1 and p.stats.published == 0
