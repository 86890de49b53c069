"""Spoken instructions without ROS: audio in, transcripts out, fully offline.

- ``audio``: PCM formats and WAV files to float32 mono at 16 kHz.
- ``vad``: Silero voice activity detection and the streaming utterance cutter.
- ``recognizers``: Whisper tiny.en (faster-whisper) and pocketsphinx with a JSGF grammar.
- ``vocabulary``: the command words (from the tabletop generator), the Whisper prompt and
  the grammar.
- ``pipeline``: audio stream -> utterances -> transcripts on a worker thread.
- ``wer``: word error rate.
"""
