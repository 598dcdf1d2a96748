"""The one boundary for uploaded bytes: images, zips of images/masks/CSV, checkpoints, label files.

Every upload path goes through here and every limit is stated once, in :mod:`.limits`; ``describe_limits()`` is
the table the pages and the README show. Every failure is a typed error (:class:`ImageError` for images, zips and
box files, :class:`ModelLoadError` for checkpoints and labels) whose message is one sentence a user can act on.

- images: an explicit raster allow-list (:data:`FORMATS`); documents (PDF, PostScript/EPS, SVG/HTML) are refused by
  name and no decoder that can start a process is ever reached;
- zips: entries counted before parsing, names checked, members inflated here in bounded steps (never trusting the
  sizes a zip declares), per-member and per-zip limits, no encryption, only stored/deflate/bzip2;
- model files: Hugging Face folders (safetensors only, no auto_map or code) and ONNX graphs (no external data,
  bounded node count), see :mod:`.modelfiles`;
- checkpoints: the torch archive inspected before ``torch.load(weights_only=True)``, odd tensors refused after;
- text: JSON depth checked before parsing; CSV fields, rows and numbers bounded.
"""

from .checkpoints import read_state_dict
from .limits import LIMITS, Limits
from .limits import describe as describe_limits
from .modelfiles import ModelFolder, read_model_folder, read_onnx
from .raster import FORMATS, DecodedImage, decode_image, sniff_document
from .text import parse_boxes, parse_labels
from .zips import MemberError, UploadZip

__all__ = ["FORMATS", "LIMITS", "DecodedImage", "Limits", "MemberError", "ModelFolder", "UploadZip", "decode_image",
           "describe_limits", "parse_boxes", "parse_labels", "read_model_folder", "read_onnx", "read_state_dict",
           "sniff_document"]
