#!/usr/bin/env python3
"""Offline speech benchmark: model load time, per-utterance latency and WER per backend.

    source scripts/env.sh
    python benchmarks/speech_benchmark.py                    # the committed espeak fixtures
    python benchmarks/speech_benchmark.py --data DIR --threads 4

DIR holds WAV files and ``transcripts.tsv`` (``file<TAB>reference text`` per line). Each file is
cut by the Silero VAD exactly as the node cuts it (default VadConfig), then every recogniser
decodes every utterance. Printed per configuration: model load (construction) and warm-up
times, median / max decode latency, real-time factor (decode time / audio time), word error
rate (poa_gres_ros.speech.wer). Also the VAD cost per second of audio. The node adds
``vad.min_silence_ms`` (trailing silence needed to end an utterance, 500 ms by default) to
the decode latency between the end of speech and the published instruction.
Numbers depend on the CPU and its load; compare configurations within one run.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from poa_gres_ros.speech.audio import read_wav_mono_16k
from poa_gres_ros.speech.recognizers import PocketsphinxRecognizer, WhisperRecognizer
from poa_gres_ros.speech.vad import SileroVad, UtteranceSegmenter
from poa_gres_ros.speech.vocabulary import build_prompt
from poa_gres_ros.speech.wer import corpus_wer

ROOT = Path(__file__).resolve().parents[1]


def load_cuts(data: Path):
    rows = [ln.split('\t') for ln in (data / 'transcripts.tsv').read_text().splitlines() if ln]
    vad = SileroVad()
    cuts, refs, audio_s, vad_s = [], [], 0.0, 0.0
    for name, text in rows:
        x = read_wav_mono_16k(data / name)
        t0 = time.perf_counter()
        seg = UtteranceSegmenter(vad)
        utts = seg.feed(x) + seg.flush()
        vad_s += time.perf_counter() - t0
        audio_s += len(x) / 16000
        if len(utts) != 1:
            print(f'warning: {name}: VAD found {len(utts)} utterances; using all of them joined')
        if utts:
            cuts.append(utts)
            refs.append(text)
    print(f'VAD: {1000 * vad_s / audio_s:.1f} ms per second of audio ({len(rows)} files)')
    return cuts, refs


def run(label: str, make, cuts, refs) -> None:
    t0 = time.perf_counter()
    rec = make()
    load_ms = (time.perf_counter() - t0) * 1000
    warm_ms = rec.warm_up()
    hyps, lat, rtf = [], [], []
    for utts in cuts:
        texts = []
        for u in utts:
            tr = rec.transcribe(u.audio)
            texts.append(tr.text)
            lat.append(tr.decode_ms)
            rtf.append(tr.decode_ms / 1000 / u.duration_s)
        hyps.append(' '.join(texts))
    errors, words, wer = corpus_wer(refs, hyps)
    print(
        f'{label:34} load {load_ms:6.0f} ms  warm-up {warm_ms:5.0f} ms  decode median '
        f'{statistics.median(lat):5.0f} ms max {max(lat):5.0f} ms  RTF {statistics.median(rtf):.2f}'
        f'  WER {errors}/{words} = {wer:.1%}'
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--data', type=Path, default=ROOT / 'test' / 'data' / 'speech')
    ap.add_argument('--threads', type=int, default=2, help='Whisper CPU threads')
    ap.add_argument('--beams', type=int, nargs='+', default=[1, 5])
    args = ap.parse_args()
    cuts, refs = load_cuts(args.data)
    for beam in args.beams:
        for prompt in ('', build_prompt()):
            label = f'whisper tiny.en beam {beam}' + (' + prompt' if prompt else '')
            run(
                label,
                lambda b=beam, p=prompt: WhisperRecognizer(
                    cpu_threads=args.threads, beam_size=b, initial_prompt=p
                ),
                cuts,
                refs,
            )
    run('pocketsphinx + JSGF grammar', PocketsphinxRecognizer, cuts, refs)
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
