"""A dual encoder's tokenizer from an uploaded model folder, read as data: never code, never a download.

A folder's tokenizer is one of (first found): ``tokenizer.json`` (the tokenizers library's serialised pipeline, parsed
by its Rust reader), ``vocab.json`` + ``merges.txt`` (CLIP's byte-level BPE, built in memory with CLIP's fixed
normalisation), or ``spiece.model`` (a SentencePiece model, SigLIP's; needs the optional sentencepiece package). Each
file is inflated through the bounded zip reader up to :attr:`Limits.tokenizer_bytes`; ``tokenizer_config.json``,
``special_tokens_map.json`` and anything else that could name a class or a path is not read. The tokenizer's size
must fit the text tower's vocabulary (an id past it would index outside the embedding table), and a probe prompt
must encode, so every refusal is one :class:`ModelLoadError` at load time.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ImageError, ModelLoadError
from .limits import LIMITS, Limits, human
from .text import load_json
from .zips import UploadZip

FILES = ("tokenizer.json", "vocab.json", "merges.txt", "spiece.model")
HINT = "save the processor with the model (processor.save_pretrained('my_model')) and zip that folder"
PROBE = "a photo of a horse"


def read_files(z: UploadZip, local: dict[str, str], limits: Limits = LIMITS) -> dict[str, bytes]:
    """The tokenizer files at the folder's root (``local``: name in the folder -> name in the zip), each bounded."""
    out = {}
    for name in FILES:
        if name in local:
            try:
                out[name] = z.read(local[name], limits.tokenizer_bytes)
            except ImageError as e:
                raise ModelLoadError(f"The model folder's {e} Tokenizer files are read up to "
                                     f"{human(limits.tokenizer_bytes, '_bytes')} each (limit tokenizer_bytes).") from None
    return out


@dataclass
class PromptTokenizer:
    """Prompts -> token ids with the tokenizer's special tokens, truncated to ``max_length``; ``size`` bounds the ids,
    ``pad`` is the tokenizer's own padding id (None: it names none), ``source`` the file it came from."""

    encode: Callable[[str], list[int]]
    size: int
    pad: int | None
    source: str

    def __call__(self, prompts: list[str]) -> list[list[int]]:
        return [list(self.encode(p)) for p in prompts]


def _text(files: dict[str, bytes], name: str) -> str:
    try:
        return files[name].decode("utf-8")
    except UnicodeDecodeError:
        raise ModelLoadError(f"The model folder's {name} is not UTF-8 text; {HINT}.") from None


def _fast(tok: Any, max_length: int, source: str) -> PromptTokenizer:
    """A tokenizers.Tokenizer with padding off (the caller pads) and truncation to the tower's length."""
    tok.no_padding()
    tok.enable_truncation(max_length)
    return PromptTokenizer(lambda s: tok.encode(s).ids, tok.get_vocab_size(with_added_tokens=True), None, source)


def _from_json(files: dict[str, bytes], max_length: int) -> PromptTokenizer:
    from tokenizers import Tokenizer

    text = _text(files, "tokenizer.json")
    try:
        tok = Tokenizer.from_str(text)
    except BaseException as e:  # noqa: BLE001 - the Rust reader raises its PanicException (a BaseException) too
        if isinstance(e, (KeyboardInterrupt, SystemExit, MemoryError)):
            raise
        raise ModelLoadError(f"The model folder's tokenizer.json is not a tokenizer the tokenizers library reads "
                             f"({type(e).__name__}); {HINT}.") from None
    pad = (tok.padding or {}).get("pad_id")
    out = _fast(tok, max_length, "tokenizer.json")
    out.pad = pad if isinstance(pad, int) else None
    return out


def _from_bpe(files: dict[str, bytes], max_length: int) -> PromptTokenizer:
    from transformers import CLIPTokenizer

    try:
        vocab = load_json(_text(files, "vocab.json"), 2)
    except ValueError as e:
        raise ModelLoadError(f"The model folder's vocab.json is not JSON ({e}); {HINT}.") from None
    if not isinstance(vocab, dict) or not all(isinstance(k, str) and isinstance(v, int) and not isinstance(v, bool)
                                              and v >= 0 for k, v in vocab.items()):
        raise ModelLoadError(f"The model folder's vocab.json is not a table of tokens to ids; {HINT}.")
    lines = [ln for ln in _text(files, "merges.txt").splitlines() if ln and not ln.startswith("#version")]
    merges: Any = [tuple(ln.split(" ")) for ln in lines]
    if not all(len(m) == 2 for m in merges):
        raise ModelLoadError(f"The model folder's merges.txt has a line that is not two tokens separated by a space; "
                             f"{HINT}.")
    try:
        tok = CLIPTokenizer(vocab=vocab, merges=merges).backend_tokenizer
    except Exception as e:  # noqa: BLE001 - the BPE builder raises for merges of tokens the vocabulary lacks
        raise ModelLoadError(f"The model folder's vocab.json and merges.txt do not make a CLIP tokenizer "
                             f"({type(e).__name__}: a merge of tokens the vocabulary lacks?); {HINT}.") from None
    return _fast(tok, max_length, "vocab.json + merges.txt")


def _from_spiece(files: dict[str, bytes], max_length: int) -> PromptTokenizer:
    try:
        from transformers import SiglipTokenizer
    except ImportError:
        raise ModelLoadError("This folder's tokenizer is a SentencePiece model (spiece.model), which needs the optional "
                             "package sentencepiece: run `pip install sentencepiece` on the server, or upload the "
                             "folder with a tokenizer.json.") from None
    with tempfile.TemporaryDirectory(prefix="xai-spm-") as tmp:  # SentencePiece loads from a path: a private copy
        path = Path(tmp) / "spiece.model"
        path.write_bytes(files["spiece.model"])
        try:
            tok = SiglipTokenizer(vocab_file=str(path))
        except Exception as e:  # noqa: BLE001 - a malformed protobuf raises many types
            raise ModelLoadError(f"The model folder's spiece.model is not a SentencePiece model ({type(e).__name__}); "
                                 f"{HINT}.") from None
    return PromptTokenizer(lambda s: tok(s, truncation=True, max_length=max_length)["input_ids"], len(tok),
                           tok.pad_token_id, "spiece.model")


def build(files: dict[str, bytes], *, max_length: int, vocab_size: int, bpe: bool) -> PromptTokenizer:
    """The folder's tokenizer for a text tower of ``vocab_size`` tokens that reads ``max_length`` tokens; ``bpe``
    allows CLIP's vocab.json + merges.txt pair."""
    if "tokenizer.json" in files:
        tok = _from_json(files, max_length)
    elif bpe and {"vocab.json", "merges.txt"} <= set(files):
        tok = _from_bpe(files, max_length)
    elif "spiece.model" in files:
        tok = _from_spiece(files, max_length)
    else:
        pair = "vocab.json and merges.txt, " if bpe else ""
        raise ModelLoadError(f"The model folder holds no tokenizer (tokenizer.json, {pair}or spiece.model), so prompts "
                             f"cannot be read; {HINT}.")
    if tok.size > vocab_size:
        raise ModelLoadError(f"The tokenizer ({tok.source}) has {tok.size:,} tokens but the text tower's vocab_size is "
                             f"{vocab_size:,}; upload the tokenizer the model was trained with.")
    try:
        ids = tok([PROBE])[0]
    except Exception as e:  # noqa: BLE001 - a pipeline that parses but cannot run (a bad regex, a missing token)
        raise ModelLoadError(f"The tokenizer ({tok.source}) cannot encode a prompt ({type(e).__name__}); "
                             f"{HINT}.") from None
    if not ids:
        raise ModelLoadError(f"The tokenizer ({tok.source}) encodes a prompt as no tokens; {HINT}.")
    return tok
