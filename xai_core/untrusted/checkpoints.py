"""Uploaded checkpoints -> a flat state dict of plain dense tensors, or one :class:`ModelLoadError`.

Nothing is unpickled: ``torch.load`` always runs with ``weights_only=True`` passed explicitly (so the
``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD`` environment variable cannot turn it off); TorchScript archives and plain
pickles are refused. Before ``torch.load``, a zip-format file (torch >= 1.6) is inspected as a zip: torch writes every
record uncompressed, so a compressed record (which torch would inflate to its declared size: a 4 MB file can claim
4 GB), a record larger than the file can hold, overlapping records or too much tensor data are refused.

Legacy (pre-1.6, non-zip) files are read, bounded by their format: their storages are raw bytes that torch copies
from the file after checking each one's size against the size the file records, so at most the file's own bytes are
ever written to memory; a size the pickle merely declares is reserved (address space, never touched) and fails
cleanly when it cannot be (tested under an address-space cap). The same checks after loading apply.

safetensors headers are checked (length, JSON depth, dtypes, offsets inside the file) before loading. After loading,
sparse, meta, quantized and complex tensors, unusual dtypes and views larger than their data are refused.
"""

from __future__ import annotations

import io
import math
import pickle

import torch

from ..errors import ModelLoadError
from . import zipscan
from .limits import LIMITS, MB, Limits
from .messages import shown
from .text import load_json

SAVE = "Upload a state dict saved with torch.save(model.state_dict(), path)."
_LEGACY = b"\x80\x02\x8a\n" + (0x1950A86A20F9469CFC6C).to_bytes(10, "little")
DTYPES = {torch.float32, torch.float16, torch.bfloat16, torch.float64, torch.int64, torch.int32, torch.int16,
          torch.int8, torch.uint8, torch.bool}
_SAFE_DTYPES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1, "BOOL": 1}


def _inspect_torch_zip(data: bytes, limits: Limits) -> None:
    try:
        zf = zipscan.open_zip(data, limits.checkpoint_records, exact=True)  # as torch's own zip reader sees it
        infos = zf.infolist()
        spans = sorted(((*zipscan.span(data, i), i) for i in infos), key=lambda t: t[:2])
    except zipscan.TooManyEntries as e:
        raise ModelLoadError(f"The checkpoint archive has {e}; a state dict has one record per tensor.") from None
    except zipscan.ZipStructureError as e:
        raise ModelLoadError(f"This file is not a PyTorch (.pth/.pt) checkpoint: {e}. {SAVE}") from None
    if any(i.filename.endswith("/constants.pkl") or "/code/" in i.filename for i in infos):
        raise ModelLoadError("This is a TorchScript archive (torch.jit.save); model code is never run from an upload. "
                             + SAVE)
    end, total = 0, 0
    for start, stop, info in spans:
        name = shown(info.filename)
        if info.flag_bits & 0x1 or info.compress_type != 0:
            raise ModelLoadError(f"The checkpoint's record {name} is compressed, which torch.save never does (a "
                                 f"compressed record can inflate to gigabytes). {SAVE}")
        if info.file_size != info.compress_size or start + info.compress_size > len(data):
            raise ModelLoadError(f"The checkpoint's record {name} declares {info.file_size:,} bytes, more than the file "
                                 f"holds; the file is corrupt or forged. {SAVE}")
        if start < end:
            raise ModelLoadError(f"The checkpoint's records overlap at {name}; the file is corrupt or forged. {SAVE}")
        end, total = stop, total + info.file_size
        if info.filename.endswith("data.pkl") and info.file_size > limits.checkpoint_pickle_bytes:
            raise ModelLoadError(f"The checkpoint's table of tensors is {info.file_size / MB:.0f} MB; up to "
                                 f"{limits.checkpoint_pickle_bytes // MB} MB are read. {SAVE}")
    if total > limits.checkpoint_tensor_bytes:
        raise ModelLoadError(f"The checkpoint holds {total / MB:,.0f} MB of data; up to "
                             f"{limits.checkpoint_tensor_bytes // MB:,} MB are read.")


def _load_torch(data: bytes, limits: Limits) -> object:
    if data.startswith(b"PK\x03\x04"):
        _inspect_torch_zip(data, limits)
    elif not data.startswith(_LEGACY):  # legacy files: raw storages, see the module docstring
        if data[:1] == b"\x80":
            raise ModelLoadError("This file is a plain Python pickle, not a torch.save checkpoint; pickles can run "
                                 f"arbitrary code, so they are never loaded here. {SAVE}")
        raise ModelLoadError(f"This file is not a PyTorch (.pth/.pt) or safetensors checkpoint. {SAVE}")
    try:
        return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        if "GLOBAL" in str(e) or "global" in str(e):
            raise ModelLoadError(
                "This file holds a pickled Python object (a whole model or custom classes), not a state dict. "
                "Pickles can run arbitrary code, so they are never loaded here. In your code run "
                "`torch.save(model.state_dict(), 'weights.pth')` and upload that file.") from None
        # torch's own text is many lines and suggests weights_only=False (unsafe): not shown to users.
        raise ModelLoadError("This file is not a PyTorch checkpoint (it does not unpickle as tensors). "
                             "Upload a state dict saved with torch.save(model.state_dict(), path).") from None
    except Exception as e:  # noqa: BLE001 - torch raises many types for garbage input
        raise ModelLoadError("This file is not a PyTorch (.pth/.pt) or safetensors checkpoint "
                             f"({type(e).__name__}). Upload a state dict saved with torch.save.") from None


def _check_safetensors_header(data: bytes, limits: Limits) -> None:
    bad = "This is not a valid .safetensors file"
    n = int.from_bytes(data[:8], "little") if len(data) >= 8 else -1
    if not 2 <= n <= min(limits.safetensors_header_bytes, len(data) - 8):
        raise ModelLoadError(f"{bad} (its header length is {max(n, 0):,} bytes, which the file cannot hold).")
    try:
        header = load_json(data[8:8 + n].decode("utf-8"), 3)
    except (UnicodeDecodeError, ValueError) as e:
        raise ModelLoadError(f"{bad} (its header {'is not UTF-8' if isinstance(e, UnicodeDecodeError) else e}).") from None
    if not isinstance(header, dict):
        raise ModelLoadError(f"{bad} (its header is not a JSON object).")
    body = len(data) - 8 - n
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        where = f"{bad} (tensor {shown(name)}"
        if not isinstance(entry, dict) or entry.get("dtype") not in _SAFE_DTYPES:
            raise ModelLoadError(f"{where} has no supported dtype; float, int and bool tensors are read).")
        shape, offsets = entry.get("shape"), entry.get("data_offsets")
        if not (isinstance(shape, list) and all(isinstance(d, int) and d >= 0 for d in shape) and len(shape) <= 16):
            raise ModelLoadError(f"{where} has an invalid shape).")
        if not (isinstance(offsets, list) and len(offsets) == 2 and all(isinstance(o, int) for o in offsets)
                and 0 <= offsets[0] <= offsets[1] <= body
                and offsets[1] - offsets[0] == math.prod(shape) * _SAFE_DTYPES[entry["dtype"]]):
            raise ModelLoadError(f"{where} points outside the file or does not match its shape).")


def _load_safetensors(data: bytes, limits: Limits) -> object:
    from safetensors import SafetensorError
    from safetensors.torch import load as load_safetensors

    _check_safetensors_header(data, limits)
    try:
        return load_safetensors(data)
    except (SafetensorError, ValueError, RuntimeError, TypeError) as e:
        raise ModelLoadError(f"This is not a valid .safetensors file ({type(e).__name__}).") from None


def _flatten(obj: object, strip_prefix: bool = True) -> dict[str, torch.Tensor]:
    if isinstance(obj, dict):
        for key in ("state_dict", "model_state_dict", "model", "net"):
            inner = obj.get(key)
            if isinstance(inner, dict) and inner and all(isinstance(v, torch.Tensor) for v in inner.values()):
                obj = inner
                break
    if not isinstance(obj, dict) or not obj or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ModelLoadError("The checkpoint does not contain a state dict (a mapping of layer names to tensors). "
                             "Save it with `torch.save(model.state_dict(), path)`.")
    state = {str(k): v for k, v in obj.items()}
    for prefix in ("module.", "model.") if strip_prefix else ():
        if all(k.startswith(prefix) for k in state):
            state = {k[len(prefix):]: v for k, v in state.items()}
    return state


def _odd(v: torch.Tensor) -> str | None:
    """Why a loaded tensor is refused, as the end of a sentence, or None."""
    if v.layout != torch.strided:
        return f"is a sparse tensor ({str(v.layout).removeprefix('torch.')}); save it with .to_dense()"
    if v.is_meta or v.device.type != "cpu":
        return "is a meta tensor, which holds no values; save the weights after they are loaded or trained"
    if v.is_quantized:
        return "is quantized; save the float model's state dict (before quantization)"
    if v.is_complex():
        return "is complex-valued; the models here take real weights"
    if v.dtype not in DTYPES:
        return f"has dtype {str(v.dtype).removeprefix('torch.')}; save float32 weights"
    if v.numel() * v.element_size() > v.untyped_storage().nbytes() - v.storage_offset() * v.element_size():
        return "is a broadcast view larger than its data; save it with .contiguous()"
    return None


def read_state_dict(data: bytes, filename: str, *, limits: Limits = LIMITS, strip_prefix: bool = True) -> dict[str, torch.Tensor]:
    """Bytes of a checkpoint file -> a flat ``{name: tensor}`` state dict of dense CPU tensors, safely.

    ``strip_prefix`` drops a ``module.``/``model.`` prefix shared by every name (DataParallel and Lightning saves);
    Hugging Face folders keep their names as written."""
    if not data:
        raise ModelLoadError("The checkpoint file is empty. Choose the file again.")
    if len(data) > limits.checkpoint_bytes:
        raise ModelLoadError(f"The checkpoint is over {limits.checkpoint_bytes // MB:,} MB; the architectures offered "
                             "here are far smaller.")
    safetensors = filename.lower().endswith(".safetensors")
    state = _flatten(_load_safetensors(data, limits) if safetensors else _load_torch(data, limits), strip_prefix)
    if len(state) > limits.checkpoint_tensors:
        raise ModelLoadError(f"The checkpoint has {len(state):,} tensors; up to {limits.checkpoint_tensors:,} are read.")
    total = 0
    for k, v in state.items():
        why = _odd(v)
        if why:
            raise ModelLoadError(f"The checkpoint's tensor {shown(k)} {why}.")
        total += v.numel() * v.element_size()
        if total > limits.checkpoint_tensor_bytes:
            raise ModelLoadError(f"The checkpoint's tensors hold more than {limits.checkpoint_tensor_bytes // MB:,} MB "
                                 "(views counted); save each tensor once, with .contiguous().")
    return state
