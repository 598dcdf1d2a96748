"""The Concepts page's sets and discovery job: which images concepts are discovered from (and TCAV's random sets),
discovery as a job (progress with an ETA, Stop), and its result in the process-wide store keyed on content (the
model's fingerprint, the set, the layer, the class, the rank). No torch here: tensors are only passed to the library.
Corrections are in ``concepts_correct``, TCAV in ``concepts_tcav``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

import xai_core as xc
from xai_core import concepts, images, lab, metrics

from . import services
from .state import Context

LAB_ID = "lab_horse_cnn"
LAB_SEED = 7  # the lab set the library's test found the tag concept in
TOP_CROPS = 6
CROP_SIDE = 72  # reference crops as shown (and in reports)
MIN_IMAGES = concepts.MIN_IMAGES  # the fewest images discovery takes (the library's rule)
SETS = {"lab": "The horse-watermark set", "samples": "The bundled samples", "zip": "Upload a zip of images"}
RANDOM_SEED = 11  # TCAV's random sets
METHODS = {"craft": "Discover directions (CRAFT)", "crp": "Relevant channels (CRP)"}
Progress = Callable[[float, str], None]


@dataclass(frozen=True)
class ConceptSet:
    """Images of the set as RGB uint8 at the model's input size (crops are cut from these) and how to crop them."""

    key: str
    title: str
    images: np.ndarray
    crop: float
    stride: float
    resize: bool

    def inputs(self, model: xc.ModelSpec) -> Any:
        """Normalised model inputs [N, 3, h, w] (a tensor, built with the tensor's own methods)."""
        if self.key.startswith("lab:"):
            return lab.to_tensor(self.images)
        first = model.preprocess(self.images[0])
        x = first.new_empty((len(self.images), *first.shape[1:]))
        for i, im in enumerate(self.images):
            x[i] = model.preprocess(im)[0]
        return x


@dataclass(frozen=True)
class Found:
    """A finished discovery and the set it came from."""

    sig: tuple
    discovery: concepts.Discovery
    set: ConceptSet

    @property
    def model_digest(self) -> str:
        """The fingerprint of the weights the concepts were found in (see :func:`signature`)."""
        return str(self.sig[1])


def is_lab(ctx: Context) -> bool:
    return ctx.model.id == LAB_ID


def set_choices(ctx: Context) -> list[str]:
    """The sets this model can use (keys of ``SETS``): the horse-watermark set is the lab CNN's only."""
    return ["lab", "samples", "zip"] if is_lab(ctx) else ["samples", "zip"]


def _crops(ctx: Context) -> tuple[float, float, bool]:
    """Crop side, stride and resizing: the lab CNN is fully convolutional and trained at one scale (crops kept at
    their size); any other model gets CRAFT's crops resized to its input."""
    return (0.375, 0.125, False) if is_lab(ctx) else (0.5, 0.25, True)


def concept_set(ctx: Context, target: int, n: int) -> ConceptSet:
    """The lab CNN's horse-watermark set: the class's images among ``n`` generated images."""
    model = ctx.model
    data = services.memo(("concept_lab_set", n, LAB_SEED), lambda: lab.make_dataset(n, seed=LAB_SEED))
    mine = data.images[data.labels == target]
    return ConceptSet(f"lab:{n}:{LAB_SEED}:{target}", f"{len(mine)} '{model.label(target)}' images of the "
                      f"horse-watermark set", mine, *_crops(ctx))


def sample_set(ctx: Context) -> ConceptSet:
    """The bundled sample images at the model's input size."""
    model = ctx.model

    def resized() -> np.ndarray:
        return np.stack([model.resized(services.sample(name)[0]) for name in images.sample_names()])

    pics = services.memo(("concept_samples", model.input_size), resized)
    return ConceptSet("samples", f"the {len(pics)} bundled sample images", pics, *_crops(ctx))


def zip_set(ctx: Context, digest: str, data: bytes) -> tuple[ConceptSet | None, list[str]]:
    """An uploaded zip's images at the model's input size and the notes on what was skipped, keyed on the zip's
    content digest. Read by the upload boundary (:func:`xai_core.metrics.read_zip`: bounded inflation, checked
    names, images over 1024 px downscaled as in the evaluation set); ``None`` when no image could be read. Raises the
    boundary's typed errors (a bomb, a zip that is not one)."""
    model = ctx.model

    def read() -> tuple[np.ndarray | None, list[str]]:
        items, notes = metrics.read_zip(data)
        pics = np.stack([model.resized(it.image) for it in items]) if items else None
        return pics, notes

    pics, notes = services.memo(("concept_zip", digest, model.input_size), read)
    if pics is None:
        return None, notes
    return ConceptSet(f"zip:{digest}", f"the {len(pics)} images of the uploaded zip", pics, *_crops(ctx)), notes


def random_sets(ctx: Context, runs: int, size: int) -> list[ConceptSet]:
    """TCAV's ``runs`` random sets of ``size`` images each, seeded: for the lab CNN, images of the horse-watermark set
    (every class, tags as in training); for any other model, random square crops (a quarter to three quarters of the
    side) of the bundled samples at the model's input size."""
    model = ctx.model
    if is_lab(ctx):
        data = services.memo(("tcav_lab_random", runs * size, RANDOM_SEED),
                             lambda: lab.make_dataset(runs * size, seed=RANDOM_SEED))
        return [ConceptSet(f"lab:random:{RANDOM_SEED}:{r}:{size}", f"random set {r + 1}",
                           data.images[r * size:(r + 1) * size], *_crops(ctx)) for r in range(runs)]

    def crops() -> np.ndarray:
        pics = [services.sample(name)[0] for name in images.sample_names()]
        rng = np.random.default_rng(RANDOM_SEED)
        out = []
        for _ in range(runs * size):
            im = pics[int(rng.integers(len(pics)))]
            h, w = im.shape[:2]
            side = max(8, int(rng.uniform(0.25, 0.75) * min(h, w)))
            y, x = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
            out.append(model.resized(np.ascontiguousarray(im[y:y + side, x:x + side])))
        return np.stack(out)

    pics = services.memo(("tcav_sample_random", model.input_size, runs * size, RANDOM_SEED), crops)
    return [ConceptSet(f"samples:random:{RANDOM_SEED}:{r}:{size}", f"random set {r + 1}",
                       pics[r * size:(r + 1) * size], *_crops(ctx)) for r in range(runs)]


def signature(ctx: Context, cset: ConceptSet, layer: str, target: int, rank: int, how: str = "craft") -> tuple:
    """The cache key of one discovery: content only (the weights' fingerprint, never an object's id)."""
    key = ("concepts", services.model_digest(ctx.workbench), ctx.options.result_key, cset.key, layer, target, rank)
    return key if how == "craft" else (*key, how)  # CRAFT's keys as before (names already saved under them)


def with_eta(progress: Progress) -> Progress:
    """Discovery reports two passes over its inputs (crops' activations, then the images' gradients), each 0 → 1:
    one bar for both, with the time left estimated from the time so far."""
    start = time.monotonic()

    def report(fraction: float, text: str) -> None:
        f = 0.7 * fraction if text.startswith("activations") else 0.7 + 0.3 * fraction
        spent = time.monotonic() - start
        eta = f" · about {spent * (1 - f) / f:.0f} s left" if f > 0.02 else ""
        progress(f, f"{text}{eta}")

    return report


def discovery_job(ctx: Context, cset: ConceptSet, target: int, layer: str, rank: int,
                  sig: tuple, how: str = "craft") -> Callable[[Progress], Found]:
    wb, store = ctx.workbench, services.store()  # the store is fetched here, on the script's thread

    def run(progress: Progress) -> Found:
        hit = store.get(sig)
        if isinstance(hit, Found):
            return hit
        progress(0.0, "activations 0")
        if how == "crp":
            found = concepts.crp_concepts(wb, cset.inputs(wb.model), target, layer=layer, top=rank, top_crops=TOP_CROPS,
                                          progress=progress)
            result = Found(sig, found, cset)
            store.put(sig, result)
            return result
        found = concepts.discover(wb, cset.inputs(wb.model), target, layer=layer, rank=rank, crop=cset.crop,
                                  stride=cset.stride, resize=cset.resize, top_crops=TOP_CROPS,
                                  progress=with_eta(progress))
        result = Found(sig, found, cset)
        store.put(sig, result)
        return result

    return run


def found_for(sig: tuple, job: Any) -> Found | None:
    """The discovery for ``sig``: from the store, else from this session's finished job."""
    hit = services.store().get(sig)
    if isinstance(hit, Found):
        return hit
    result = getattr(job, "result", None)
    return result if isinstance(result, Found) and result.sig == sig else None


def concept_maps(ctx: Context, found: Found) -> np.ndarray:
    """Each concept's map over the current image, [k, h, w] at the model's input size (memoised): CRAFT's
    coefficient maps, or CRP's conditional heatmaps."""
    def build() -> np.ndarray:
        x = ctx.model.preprocess(ctx.image)
        return concepts.maps_of(ctx.workbench, found.discovery, x)[0].cpu().numpy()

    return services.memo(("concept_maps", *found.sig, ctx.digest), build)


def crop(found: Found, image: int, box: tuple[int, int, int, int]) -> np.ndarray:
    """A reference crop of the set's image ``image`` at ``CROP_SIDE`` pixels (nearest: the pixels as the model saw)."""
    x0, y0, x1, y1 = box
    piece = found.set.images[image][y0:y1, x0:x1]
    return cv2.resize(piece, (CROP_SIDE, CROP_SIDE), interpolation=cv2.INTER_NEAREST)
