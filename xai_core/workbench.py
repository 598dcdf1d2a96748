"""The Workbench: one session's access to one model — its lock, its run options, and the single pipeline.

``Workbench(model, options)`` is cheap; many may wrap the same :class:`ModelSpec` (one per session) and they share
the model's lock (``ModelSpec.lock``, one per model). Every forward pass or hook on a shared model runs inside
:meth:`Workbench.session`, which holds that lock and makes the session's :class:`RunOptions` current for the
engine (a ``ContextVar``: other threads and sessions keep theirs). The pipeline is written once, here:
preprocess → target → run → finite check → resize. An explainer returns its maps, its declared diagnostics and,
where it ran one, its first forward's logits as a value (:class:`~xai_core.result.ExplainerResult`); the pipeline
runs a separate forward only when the explainer ran none on the input itself. Analyses (metrics, sanity checks,
the lab) take a Workbench (or a ModelSpec, wrapped with the default options) and run their forwards through it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import cv2
import numpy as np
import torch

from . import anytime
from . import options as run_options
from .engine import class_probabilities, logits, logits_of
from .errors import ExplainerError
from .models.spec import ModelSpec
from .options import RunOptions
from .registry import ExplainerSpec
from .request import ExplainRequest, Explanation, Prediction
from .result import TOP1, Refinement
from .targets import TARGET_TYPES, Target, bind, describe_output, why_not
from .types import DiagnosticValue, Progress

T = TypeVar("T")


@dataclass
class Prepared:
    """An image ready for the model: the input ``x`` [1, 3, h, w] and, when a forward was needed, its logits."""

    x: torch.Tensor
    logits: torch.Tensor | None = None


@dataclass
class BatchRun:
    """Maps of one explainer for a batch (model input size, float32 on the CPU), with the classes explained, the
    class probabilities from the same run and the diagnostics the explainer declares (name -> one value per item,
    in declaration order); a refining explainer's per-pixel uncertainty (like the maps) and its refinement."""

    maps: torch.Tensor
    targets: list[int]
    probabilities: torch.Tensor
    diagnostics: dict[str, list]
    seconds: float
    uncertainty: torch.Tensor | None = None
    refinement: Refinement | None = None

    def diagnostics_of(self, spec: ExplainerSpec, i: int) -> dict[str, DiagnosticValue]:
        """Item ``i``'s diagnostics, each with its declaration (``spec`` is the explainer that made this run)."""
        return {d.name: DiagnosticValue(d, self.diagnostics[d.name][i]) for d in spec.diagnostics
                if d.name in self.diagnostics}


class Workbench:
    """A session's handle on a model; see the module docstring."""

    def __init__(self, model: ModelSpec, options: RunOptions | None = None) -> None:
        if not isinstance(model, ModelSpec):
            raise ExplainerError(f"A Workbench needs a loaded model (ModelSpec); got {type(model).__name__}.")
        self._model = model
        self._options = options or RunOptions()

    def __repr__(self) -> str:
        return f"Workbench({self._model.id!r}, {self._options})"

    @property
    def model(self) -> ModelSpec:
        return self._model

    @property
    def options(self) -> RunOptions:
        return self._options

    @property
    def lock(self):  # noqa: ANN201 - threading.RLock has no public type
        return self._model.lock

    def with_options(self, options: RunOptions) -> Workbench:
        """The same model (and lock) with other run options."""
        return Workbench(self._model, options)

    def with_model(self, model: ModelSpec) -> Workbench:
        """Another model (e.g. a randomised copy, with its own lock) with this session's options."""
        return Workbench(model, self._options)

    @contextmanager
    def session(self) -> Iterator[ModelSpec]:
        """Hold the model's lock and make this session's options current; yields the model. Re-entrant."""
        with self._model.lock, run_options.using(self._options):
            yield self._model

    def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``fn(model, *args, **kwargs)`` inside :meth:`session`: for analyses that touch the module directly."""
        with self.session() as model:
            return fn(model, *args, **kwargs)

    # --- forward passes -------------------------------------------------------------------------------------

    def logits(self, x: torch.Tensor, *, progress: Progress | None = None) -> torch.Tensor:
        """Logits ``[N, classes]`` (float32, on the model's device) of normalised inputs, in batches."""
        with self.session() as model:
            if len(x) == 0:
                return torch.empty(0, model.num_classes, device=model.device)
            return logits_of(model.module, x.to(model.device), progress=progress)

    def probabilities_of(self, images: list[np.ndarray]) -> np.ndarray:
        """Softmax probabilities ``[N, classes]`` of RGB uint8 images of any size, in one batched run."""
        with self.session() as model:
            x = torch.cat([model.preprocess(im) for im in images])
            if model.task != "classifier" and not model.target_kind:
                raise ExplainerError(why_not(model.task, "class") or "")
            return class_probabilities(self.logits(x)).cpu().numpy()

    def probabilities(self, image: np.ndarray) -> np.ndarray:
        """Softmax class probabilities for one RGB uint8 image."""
        return self.probabilities_of([_check_image(image)])[0]

    def predict(self, image: np.ndarray, k: int = 5) -> list[Prediction]:
        """The top-``k`` classes with probabilities."""
        p = self.probabilities(image)
        return [Prediction(int(i), self._model.label(int(i)), float(p[i])) for i in np.argsort(-p)[:k]]

    # --- the pipeline -----------------------------------------------------------------------------------------

    def prepare(self, image: np.ndarray, target: int | None) -> tuple[torch.Tensor, int, torch.Tensor]:
        """Preprocess one image and settle the class: ``(x, target, probabilities)`` (one forward). For analyses
        that need the target before they start (evaluation curves); explaining uses :meth:`explain`."""
        with self.session() as model:
            x = model.preprocess(_check_image(image))
            probs = class_probabilities(logits(model.module, x))[0]
            tgt = int(probs.argmax()) if target is None else self._check_target(target)
            return x, tgt, probs

    def bound(self, target: Target, image: np.ndarray | None = None) -> Workbench:
        """This session's Workbench on the model reduced to ``target``'s score, its class 0 (:mod:`.targets`): for
        analyses (curves, sanity checks) of a prompt, a reference, a region or a box. ``image`` = the explained image
        (a predicted region is found on it)."""
        with self.session() as model:
            x = model.preprocess(_check_image(image)) if image is not None else \
                torch.zeros(1, 3, *model.input_size, device=model.device)
            return Workbench(bind(model, target, x), self._options)

    def describe(self, image: np.ndarray) -> dict[str, Any]:
        """What a segmenter or a detector says about an RGB uint8 image, for target pickers
        (:func:`.targets.describe_output`: class shares and the class map, or the detections)."""
        with self.session() as model:
            return describe_output(model, model.preprocess(_check_image(image)))

    def explain_tensor(self, x: torch.Tensor, targets: list[int | None] | None, request: ExplainRequest, *,
                       progress: Progress | None = None) -> BatchRun:
        """Explain a batch of model inputs ``x`` [N, 3, h, w] (normalised), item i for ``targets[i]`` (None: its
        top-1 class). Explainers that report their first forward (``reports_logits``) decide top-1 targets; for the
        others one separate forward comes first when a top-1 class is asked for. The probabilities come from the
        logits the explainer returns, and from a separate forward only when it returns none. When the request's
        target is a prompt, a reference, a region or a box, ``targets`` is ignored (None: one per input) and every
        item is explained for it (the model bound to it, :mod:`.targets`); its "probability" is then its score."""
        return anytime.last(self._runs(x, targets, request, progress, stream=False))

    def _runs(self, x: torch.Tensor, targets: list[int | None] | None, request: ExplainRequest, progress: Progress | None, *,
              stream: bool, stop: anytime.StopRule | None = None) -> Iterator[BatchRun]:
        """THE pipeline behind :meth:`explain_tensor` (one run) and :meth:`explain_stream` (each refinement): holds the
        model's lock until it is exhausted or closed; ``seconds`` counts computing time only, not the caller's."""
        spec = request.spec
        if isinstance(request.target, TARGET_TYPES):
            targets = [0] * len(x)
        elif targets is None:
            targets = [request.target] * len(x)
        if len(targets) != len(x):
            raise ExplainerError(f"{len(targets)} targets for {len(x)} inputs: give one class (or None) per input.")
        with self.session() as model:
            x = x.to(model.device)
            if isinstance(request.target, TARGET_TYPES):
                model = bind(model, request.target, x)
            elif model.task != "classifier" and not model.target_kind:  # a bound model's class 0 is its target
                raise ExplainerError(why_not(model.task, "class") or "")
            why = spec.why_not(model)
            if why:
                raise ExplainerError(why)
            wanted = [TOP1 if t is None else self._check_target(t, model) for t in targets]
            z0 = None
            if not spec.reports_logits and TOP1 in wanted:
                z0 = logits(model.module, x)
                wanted = [int(z0[i].argmax()) if t == TOP1 else t for i, t in enumerate(wanted)]
            target = torch.tensor(wanted, device=x.device)
            kw = {"progress": progress, "seed": request.seed, **request.kwargs}
            seconds, t0 = 0.0, time.perf_counter()
            results = spec.stream(model, x, target, stop=stop, **kw) if stream else iter([spec.run(model, x, target, **kw)])
            with anytime.closed(results):
                for result in results:
                    if x.device.type == "cuda":
                        torch.cuda.synchronize()
                    seconds += time.perf_counter() - t0
                    if result.logits is not None:
                        z = result.logits
                    else:
                        z0 = z = logits(model.module, x) if z0 is None else z0
                    if bool((result.target < 0).any()):
                        raise ExplainerError(f"{spec.title} did not resolve the top-1 class; give the class to explain.")
                    yield self._batch_run(spec, result, z, seconds)
                    t0 = time.perf_counter()

    @staticmethod
    def _batch_run(spec: ExplainerSpec, result: Any, z: torch.Tensor, seconds: float) -> BatchRun:
        maps = result.maps.detach().float().cpu()
        if not torch.isfinite(maps).all():
            raise ExplainerError(f"{spec.title} produced NaN or infinite values for this input; "
                                 "try other parameters or another method.")
        diagnostics = {d.name: list(result.diagnostics[d.name]) for d in spec.diagnostics if d.name in result.diagnostics}
        unc = None if result.uncertainty is None else result.uncertainty.detach().float().cpu()
        return BatchRun(maps, [int(t) for t in result.target.tolist()], class_probabilities(z.float()).cpu(), diagnostics,
                        seconds, unc, result.refinement)

    def explain(self, image: np.ndarray, request: ExplainRequest | str, *,
                progress: Progress | None = None) -> Explanation:
        """Explain the model's score for ``request.target`` (None: top-1) on an RGB uint8 image of any size."""
        if isinstance(request, str):
            request = ExplainRequest.make(request)
        image = _check_image(image)
        with self.session() as model:
            run = self.explain_tensor(model.preprocess(image), None, request, progress=progress)
        return self._explanation(image, request, run)

    def explain_stream(self, image: np.ndarray, request: ExplainRequest | str, *, stop: anytime.StopRule | None = None,
                       progress: Progress | None = None) -> Iterator[Explanation]:
        """Successive explanations of a refining explainer (:mod:`anytime`: any-time maps, each with its uncertainty),
        the last equal to :meth:`explain`'s unless ``stop`` ended the stream early (its ``refinement.stopped`` says
        why); other explainers yield :meth:`explain`'s alone. The model's lock is held until the generator is
        exhausted or closed: use ``with contextlib.closing(wb.explain_stream(...)) as maps:``."""
        if isinstance(request, str):
            request = ExplainRequest.make(request)
        image = _check_image(image)
        with self.session() as model, anytime.closed(self._runs(model.preprocess(image), None, request,
                                                                progress, stream=True, stop=stop)) as runs:
            for run in runs:
                yield self._explanation(image, request, run)

    def _explanation(self, image: np.ndarray, request: ExplainRequest, run: BatchRun) -> Explanation:
        spec, (h, w) = request.spec, image.shape[:2]
        full = cv2.resize(run.maps[0].numpy(), (w, h), interpolation=cv2.INTER_LINEAR).astype(np.float32)
        unc = None if run.uncertainty is None else \
            cv2.resize(run.uncertainty[0].numpy(), (w, h), interpolation=cv2.INTER_LINEAR).astype(np.float32)
        tgt = run.targets[0]
        params = request.kwargs
        name = request.target.named(self._model.labels) if isinstance(request.target, TARGET_TYPES) else \
            self._model.label(tgt)
        return Explanation(method=spec.id, title=spec.title, map=full, target=tgt, class_name=name,
                           probability=float(run.probabilities[0, tgt]), seconds=run.seconds,
                           signed=spec.signed_for(params), params=params, diagnostics=run.diagnostics_of(spec, 0),
                           request=request, uncertainty=unc, refinement=run.refinement,
                           target_kind=request.target_kind)

    def _check_target(self, target: int, model: ModelSpec | None = None) -> int:
        t, n = int(target), (model or self._model).num_classes
        if not 0 <= t < n:
            raise ExplainerError(f"Class {t} does not exist: this model has classes 0..{n - 1}.")
        return t


def as_workbench(model: ModelSpec | Workbench) -> Workbench:
    """``model`` itself if it is a Workbench, else a Workbench on it with the default run options."""
    return model if isinstance(model, Workbench) else Workbench(model)


def _check_image(image: np.ndarray) -> np.ndarray:
    if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ExplainerError("An RGB uint8 image of shape (H, W, 3) is needed; use images.load_image first.")
    return image
