"""What a batch run does, as one value: :class:`BatchConfig` (inputs, model, explainers, metrics, targets, seeds),
parsed from the command line by :func:`parse_args` and written whole into ``run.json``.

Only the fields in :meth:`BatchConfig.identity` change the numbers of a run; a resumed run must match them.
"""

from __future__ import annotations

import argparse
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..errors import XaiError
from ..metrics.registry import get_metric
from ..request import ExplainRequest
from ..untrusted.paths import PathError, inside
from .source import ModelSource
from .work import TARGET_MODES, Work

DEFAULT_METRICS = ("deletion", "insertion", "pointing_game", "iou", "relevance_mass")


@dataclass(frozen=True)
class BatchConfig:
    """``inputs``: a folder of images, an ImageFolder class tree, or a CSV (path,target,x0,y0,x1,y1);
    ``explainers``: (method id, parameters); ``target``: ``label`` (the item's class where known, else top-1),
    ``top1`` or a class index; ``ray``: None (local), ``local`` or a cluster address; ``inputs_root``: the folder no
    input may leave (a symlink, a CSV row with ``..`` or an absolute path), default the inputs themselves."""

    inputs: str
    out: str
    model: ModelSource = field(default_factory=ModelSource)
    explainers: tuple[tuple[str, tuple[tuple[str, Any], ...]], ...] = (("gradcam", ()),)
    metrics: tuple[str, ...] = DEFAULT_METRICS
    metric_params: tuple[tuple[str, tuple[tuple[str, Any], ...]], ...] = ()
    target: str = "label"
    seeds: tuple[int, ...] = (0,)
    batch_size: int = 16
    thumb_side: int = 224
    ray: str | None = None
    workers: int = 2
    device: str | None = None
    inputs_root: str | None = None

    def __post_init__(self) -> None:
        if self.target not in TARGET_MODES and not str(self.target).isdigit():
            raise XaiError(f"--target must be label, top1 or a class index; got {self.target!r}.")
        if not self.explainers:
            raise XaiError("Give at least one explainer, e.g. --explainer gradcam.")
        # validated now, not mid-run, and stored with every default written out (run.json says exactly what ran)
        explainers = tuple((m, ExplainRequest.make(m, None, dict(p)).params) for m, p in self.explainers)
        object.__setattr__(self, "explainers", explainers)
        for m in self.metrics:
            get_metric(m)
        resolved = tuple(sorted((m, tuple(sorted(get_metric(m).resolve(dict(p)).items()))) for m, p in self.metric_params))
        object.__setattr__(self, "metric_params", resolved)
        if self.batch_size < 1 or self.workers < 1 or self.thumb_side < 16:
            raise XaiError("--batch-size and --workers must be at least 1 and --thumb-side at least 16.")
        if not self.seeds or any(s < 0 for s in self.seeds):
            raise XaiError("--seeds must be whole numbers of 0 or more, e.g. --seeds 0,1,2.")

    @property
    def requests(self) -> list[ExplainRequest]:
        """One request per explainer and seed (the target is settled per item)."""
        return [ExplainRequest.make(m, None, dict(p), s) for m, p in self.explainers for s in self.seeds]

    def fixed_target(self) -> int | None:
        return int(self.target) if str(self.target).isdigit() else None

    @property
    def work(self) -> Work:
        """What the loop computes for every image of this run."""
        fixed = self.fixed_target()
        return Work(tuple(self.requests), self.target if fixed is None else fixed, self.metrics, self.metric_params)

    def identity(self) -> dict[str, Any]:
        """What changes the numbers: a run resumes only under the same identity."""
        d = self.to_json()
        return {k: d[k] for k in ("inputs", "model", "explainers", "metrics", "metric_params", "target", "seeds",
                                  "thumb_side")}

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["explainers"] = [[m, dict(p)] for m, p in self.explainers]
        d["metric_params"] = {m: dict(p) for m, p in self.metric_params}
        d["metrics"], d["seeds"] = list(self.metrics), list(self.seeds)
        return json.loads(json.dumps(d))


def _value(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def parse_spec(text: str) -> tuple[str, tuple[tuple[str, Any], ...]]:
    """``integrated_gradients:steps=16,baseline=black`` → ("integrated_gradients", (("baseline", "black"), ("steps", 16)))."""
    name, _, rest = text.partition(":")
    params = {}
    for part in filter(None, rest.split(",")):
        k, eq, v = part.partition("=")
        if not eq:
            raise XaiError(f"Parameters are written name=value; got {part!r} in {text!r}.")
        params[k.strip()] = _value(v.strip())
    return name.strip(), tuple(sorted(params.items()))


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="xai-batch", description="Explanations and metrics over a whole dataset: "
                                "sharded maps, thumbnails, a Parquet + CSV table and run.json in --out. "
                                "Rerun the same command to resume an interrupted run.",
                                epilog="xai-batch concepts INPUTS --out DIR --class K: concept discovery over a set "
                                "(see xai-batch concepts --help).")
    p.add_argument("inputs", help="a folder of images, an ImageFolder class tree, or a CSV of path,target,x0,y0,x1,y1")
    p.add_argument("--out", required=True, help="the run folder (created; an existing run there is resumed)")
    ModelSource.add_arguments(p)
    p.add_argument("--explainer", action="append", metavar="METHOD[:k=v,...]",
                   help="an explainer and its parameters; repeat for several (default: gradcam)")
    p.add_argument("--metrics", default=",".join(DEFAULT_METRICS),
                   help="comma-separated metric ids; localisation metrics need boxes (default: %(default)s)")
    p.add_argument("--metric", action="append", default=[], metavar="METRIC:k=v,...", help="a metric's parameters")
    p.add_argument("--target", default="label", help="label (the item's class, else top-1), top1, or a class index")
    p.add_argument("--seeds", default="0", help="comma-separated seeds; every explainer runs once per seed")
    p.add_argument("--batch-size", type=int, default=16, help="images per batch (and per map shard)")
    p.add_argument("--thumb-side", type=int, default=224, help="longer side of the stored thumbnails in pixels")
    p.add_argument("--ray", default=None, metavar="local|ADDRESS",
                   help="run on Ray Data: 'local' starts a local instance, else a cluster address (ray://host:10001)")
    p.add_argument("--workers", type=int, default=2, help="model replicas (Ray actors) with --ray")
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def _under(env: str, text: str, what: str) -> tuple[str, str | None]:
    """``text`` resolved, inside ``$env`` when the operator set it (a server's roots); else the argument itself is
    its own root (the CLI run by the operator)."""
    root = os.environ.get(env)
    if not root:
        return str(Path(text).resolve()), None
    try:
        return str(inside(root, text, f"{what} must lie inside ${env}; give a path inside it.")), str(Path(root).resolve())
    except PathError as e:
        raise XaiError(str(e)) from None


def from_args(ns: argparse.Namespace) -> BatchConfig:
    try:
        seeds = tuple(int(s) for s in ns.seeds.split(",") if s.strip())
    except ValueError:
        raise XaiError(f"--seeds must be whole numbers separated by commas; got {ns.seeds!r}.") from None
    inputs, inputs_root = _under("XAI_INPUTS_ROOT", ns.inputs, "The inputs")
    out, _ = _under("XAI_RUNS_ROOT", ns.out, "--out")
    return BatchConfig(
        inputs=inputs, out=out, inputs_root=inputs_root, model=ModelSource.from_args(ns),
        explainers=tuple(parse_spec(e) for e in (ns.explainer or ["gradcam"])),
        metrics=tuple(m.strip() for m in ns.metrics.split(",") if m.strip()),
        metric_params=tuple(sorted(parse_spec(m) for m in ns.metric)), target=ns.target, seeds=seeds,
        batch_size=ns.batch_size, thumb_side=ns.thumb_side, ray=ns.ray, workers=ns.workers, device=ns.device)


def parse_args(argv: list[str] | None = None) -> tuple[BatchConfig, argparse.Namespace]:
    ns = build_parser().parse_args(argv)
    return from_args(ns), ns
