"""Every limit on uploaded bytes, stated once.

Why these numbers (the app is often a shared server: one visitor's upload must not starve the others):

- ``upload_bytes`` 200 MB: any image, zip, labels or box file. A 50 MP camera JPEG is ~25 MB and a zip of a few
  hundred photos fits; Streamlit's ``server.maxUploadSize`` should say the same.
- ``image_pixels`` 50 MP: every camera photo fits; a 50 MP RGB array is 150 MB, so decoding stays well under a GB.
- ``zip_members`` 4096 entries: 300 images with a mask each, their folders and macOS ``._`` twins fit; the central
  directory is refused before it is parsed (a 200 MB zip could otherwise hold millions of entries).
- ``zip_member_bytes`` 64 MB per member *as actually inflated* (a 16-bit 4000×4000 TIFF is 96 MB raw, but photos and
  PNGs are far smaller); ``zip_total_bytes`` 1 GB over all members read from one zip: photos do not deflate, so a
  real zip inflates to about its own size (≤ 200 MB) and raw BMP/TIFF folders to a few times that.
- CSV: a box file names at most a few hundred images, so 100,000 rows, 1024 characters per field and the
  per-member size are generous; coordinates must be finite and no larger than ``image_pixels`` (no accepted image
  has a side that long).
- Labels: 8 MB, 100,000 names of up to 512 characters (ImageNet-21k has 21,841), JSON nested at most 32 deep
  (a labels file needs 1 or 2); the depth is checked before the parser recurses.
- Checkpoints: 1 GB (VGG-16, the largest architecture offered, is 528 MB in float32); at most 65,536 zip records
  and 100,000 tensors (ViT-B has ~200), a 16 MB pickle (ViT-B's is ~30 KB) and 1 GB of tensor data counting every
  view (a broadcast view cannot make a small file look like terabytes); a safetensors header of at most 16 MB.
- Model files (:mod:`.modelfiles`): an ONNX file of at most 1 GB (as a checkpoint; protobuf cannot parse more than
  2 GB anyway) with at most 20,000 graph nodes counting subgraphs (ResNet-50 has ~120, ViT-B ~1,500 before
  fusion, Swin-T ~6,300, large exports of detection models ~10,000): the converter builds one module per node
  (20,000 cheap nodes convert and run once in ~6 s on a quiet 2-core CPU). ``onnx_initializer_reads`` 1,024 reads of
  a weight by operators other than Conv/Gemm/norms: onnx2torch registers a buffer for each such read and counts its
  buffers again at each one (quadratic: 1,000 reads convert in ~1.5 s, 4,000 in ~22 s); ResNet-50 makes ~50,
  EfficientNet-B0 ~60, ViT-B/16 ~135, ConvNeXt-T ~150, Swin-T ~160. The weights as copied (once per read, at their
  declared size) must fit ``checkpoint_tensor_bytes`` and ``model_parameters``, and one forward at the chosen size
  ``model_activation_bytes`` and ``model_forward_flops`` (below), all costed from the graph before conversion or the
  first forward (:mod:`xai_core.models.onnx_cost`). A Hugging Face folder zip of at most 1 GB (a checkpoint with its
  configs), each JSON config at most 1 MB (ViT's is ~1 KB; an ImageNet-21k id2label ~700 KB); its members are
  inflated through the bounded zip reader. A dual encoder's tokenizer files (``tokenizer.json``, ``vocab.json``,
  ``merges.txt``, ``spiece.model``) are read as data of at most ``tokenizer_bytes`` 32 MB each (CLIP's tokenizer.json
  is ~3.6 MB, SigLIP's spiece.model ~0.8 MB, a multilingual XLM-R tokenizer.json ~17 MB).
- What an uploaded model *costs*, checked before anything real is allocated (a config is a recipe for an allocation):
  ``model_parameters`` 300 M (a 1 GB checkpoint holds 268 M float32 parameters; ViT-B has 86 M, ConvNeXt-L 198 M),
  ``model_activation_bytes`` 4 GB for one batch-1 forward (every module's output counted, as a backward keeps them),
  ``model_forward_flops`` 200 GFLOP (ResNet-50 at 224 px is ~8, ViT-B/16 ~35, ViT-L/16 ~120: a 2-core CPU does
  ~50 GFLOP/s, so a forward stays within seconds), ``model_input_side`` 1024 px, ``model_classes`` 100,000
  (ImageNet-21k has 21,841) and ``model_layers`` 2,000 modules (ViT-L has ~300, ConvNeXt-XL ~400).
- An upload's normalisation (``preprocessor_config.json``, the ONNX/TorchScript options): every ``std`` at least
  ``model_std_min`` 0.001 and every ``mean`` within ±``model_mean_abs`` 10, both finite. Pixels are in [0, 1], so
  real values are ~0.2 and ~0.5 (TF-style (x-127.5)/127.5 is 0.5 and 0.5); a zero std divides by zero and a tiny or
  huge one turns a float32 input into infinities, which give non-finite predictions and maps.
- ``run_file_bytes`` 64 MB: any file a batch run or the Runs page reads (CSV, Parquet, maps shard, thumbnail,
  ``run.json``), checked on the file's real size before reading and again on what it inflates to.
- ``run_rows`` 1,000,000 rows per run table (a run of 100,000 images with 5 explainers and 2 seeds), read from the
  Parquet metadata before any column is decoded; ``run_inflated_bytes`` 256 MB: what one table or maps shard may
  take once decoded (a row is ~500 bytes in memory, so 500,000 rows; a shard of 16 maps of 1024² float32 is 64 MB),
  counted on the decoded data (a dictionary/RLE column of equal values is a few KB on disk, any size in memory).
- ``frame_count_bytes`` 16 MB: frames of animated GIF/TIFF files are counted (for the note) only up to this size,
  because counting walks the whole file; larger ones are just called animated.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

MB = 1024 * 1024


@dataclass(frozen=True)
class Limits:
    """The limits of the upload boundary; every reader takes one (tests pass smaller ones)."""

    upload_bytes: int = 200 * MB
    image_pixels: int = 50_000_000
    image_min_side: int = 8
    frame_count_bytes: int = 16 * MB
    zip_members: int = 4096
    zip_member_bytes: int = 64 * MB
    zip_total_bytes: int = 1024 * MB
    zip_name_chars: int = 1024
    set_images: int = 200
    class_zip_images: int = 300
    csv_rows: int = 100_000
    csv_field_chars: int = 1024
    labels_bytes: int = 8 * MB
    labels_count: int = 100_000
    label_chars: int = 512
    json_depth: int = 32
    checkpoint_bytes: int = 1024 * MB
    checkpoint_records: int = 65_536
    checkpoint_pickle_bytes: int = 16 * MB
    checkpoint_tensors: int = 100_000
    checkpoint_tensor_bytes: int = 1024 * MB
    safetensors_header_bytes: int = 16 * MB
    onnx_bytes: int = 1024 * MB
    onnx_nodes: int = 20_000
    onnx_initializer_reads: int = 1024
    model_zip_bytes: int = 1024 * MB
    model_config_bytes: int = 1 * MB
    tokenizer_bytes: int = 32 * MB
    model_parameters: int = 300_000_000
    model_activation_bytes: int = 4096 * MB
    model_forward_flops: int = 200_000_000_000
    model_input_side: int = 1024
    model_classes: int = 100_000
    model_layers: int = 2_000
    model_std_min: float = 0.001
    model_mean_abs: float = 10.0
    run_file_bytes: int = 64 * MB
    run_rows: int = 1_000_000
    run_inflated_bytes: int = 256 * MB


LIMITS = Limits()

_WHAT = {
    "upload_bytes": "bytes per uploaded image, zip, labels or box file",
    "image_pixels": "decoded pixels per image",
    "image_min_side": "pixels on the shorter side of an image (at least)",
    "frame_count_bytes": "bytes up to which the frames of an animated GIF/TIFF are counted",
    "zip_members": "entries per zip",
    "zip_member_bytes": "bytes per zip member, as actually inflated",
    "zip_total_bytes": "bytes inflated from one zip in total",
    "zip_name_chars": "characters per file name in a zip",
    "set_images": "images read from an evaluation set zip (the rest are skipped with a note)",
    "class_zip_images": "images read from an own-data zip (the rest are skipped with a note)",
    "csv_rows": "rows per box CSV",
    "csv_field_chars": "characters per box CSV field",
    "labels_bytes": "bytes per labels file",
    "labels_count": "class names per labels file",
    "label_chars": "characters per class name",
    "json_depth": "nesting depth of a JSON labels file",
    "checkpoint_bytes": "bytes per checkpoint file",
    "checkpoint_records": "records in a PyTorch checkpoint archive",
    "checkpoint_pickle_bytes": "bytes of a checkpoint's pickle (its table of tensors)",
    "checkpoint_tensors": "tensors per checkpoint",
    "checkpoint_tensor_bytes": "bytes of tensor data per checkpoint, every view counted",
    "safetensors_header_bytes": "bytes of a safetensors header",
    "onnx_bytes": "bytes per ONNX model file",
    "onnx_nodes": "nodes per ONNX graph, subgraphs included",
    "onnx_initializer_reads": "reads of a weight by ONNX operators other than Conv/Gemm/norms (converting is quadratic in them)",
    "model_zip_bytes": "bytes per Hugging Face model folder zip (inflated, all members)",
    "model_config_bytes": "bytes per JSON config in a model folder",
    "tokenizer_bytes": "bytes per tokenizer file in a model folder (tokenizer.json, vocab.json, merges.txt, spiece.model)",
    "model_parameters": "parameters of a model an upload describes, counted before it is built",
    "model_activation_bytes": "bytes of activations of one forward pass at the model's input size (batch 1)",
    "model_forward_flops": "floating-point operations of one forward pass at the model's input size (batch 1)",
    "model_input_side": "pixels per side of a model's input (config, preprocessor or ONNX graph)",
    "model_classes": "classes (outputs) of an uploaded model",
    "model_layers": "modules (layers) of an uploaded model, counted before it is built where the config says",
    "model_std_min": "smallest standard deviation an uploaded model's normalisation may divide by",
    "model_mean_abs": "largest magnitude of the mean an uploaded model's normalisation subtracts",
    "run_file_bytes": "bytes per file read from a batch input or run folder (table, shard, thumbnail, JSON)",
    "run_rows": "rows per run table, read from its metadata before decoding",
    "run_inflated_bytes": "bytes one run table or maps shard may take once decoded",
}


def human(n: int, name: str = "") -> str:
    """A limit as people read it: ``200 MB``, ``50 MP``, ``4,096``."""
    if name.endswith("_bytes"):
        return f"{n / MB:,.0f} MB" if n >= MB else f"{n:,} bytes"
    if name.endswith("_flops"):
        return f"{n / 1e9:,.0f} GFLOP"
    if name.endswith("_parameters"):
        return f"{n / 1e6:,.0f} M"
    if name == "image_pixels":
        return f"{n / 1e6:,.0f} MP"
    return f"{n:,}"


def describe(limits: Limits = LIMITS) -> list[dict[str, str]]:
    """One row per limit (``limit``, ``value``, ``what``): the table the pages and the README show."""
    return [{"limit": f.name, "value": human(getattr(limits, f.name), f.name), "what": _WHAT[f.name]}
            for f in fields(limits)]
