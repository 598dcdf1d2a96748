"""Where a study's images come from — the lab set with the lab CNN, the sample images, a zip of class folders, a
batch run — with the model's prediction (and the true label where one is known) for each; then the study's items
drawn from that pool for the chosen task (seeded).

Predictions run through the designer's :class:`~xai_core.workbench.Workbench` (batched, under the model's lock);
a batch run brings its own predictions and maps, so nothing runs for it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from ..batch.results import Run
from ..images import downscale, load_sample, sample_names
from ..lab.data import CLASSES, add_tag, make_dataset
from ..lab.folders import read_class_zip
from ..registry import get_explainer
from ..workbench import Workbench
from .design import NO, YES, Item, StudyError, clean_text

BATCH = 16
MAX_SIDE = 512
CLASS_CHARS = 120  # a class name as a study shows it (and stores it as an answer)


@dataclass
class Candidate:
    """One image of the pool: RGB uint8, its true class (None: unknown), the model's answer and its class index, and
    maps the source already has (a batch run: method -> (map, signed))."""

    name: str
    image: np.ndarray
    label: str | None
    prediction: str
    target: int
    maps: dict[str, tuple[np.ndarray, bool]] = field(default_factory=dict)

    def __post_init__(self) -> None:  # class names come from models and uploads: cleaned and bounded once, here
        self.prediction = clean_text(self.prediction, CLASS_CHARS) or "(unnamed class)"
        if self.label is not None:
            self.label = clean_text(self.label, CLASS_CHARS) or None

    @property
    def correct(self) -> bool | None:
        if self.label is None:
            return None
        return _norm(self.label) == _norm(self.prediction)


def _norm(name: str) -> str:
    return " ".join(name.replace("_", " ").casefold().split())


def predicted(wb: Workbench, named: Sequence[tuple[str, np.ndarray, str | None]]) -> list[Candidate]:
    """The pool of ``(name, image, true label)`` with the model's top-1 answers (batched forward passes)."""
    out: list[Candidate] = []
    for start in range(0, len(named), BATCH):
        chunk = named[start:start + BATCH]
        probs = wb.probabilities_of([im for _, im, _ in chunk])
        for (name, im, label), p in zip(chunk, probs, strict=True):
            t = int(np.argmax(p))
            out.append(Candidate(name, im, label, wb.model.label(t), t))
    return out


def lab_pool(wb: Workbench, n: int = 48, seed: int = 0) -> list[Candidate]:
    """Lab images (64×64) for the lab CNN: half a usual test mix, a quarter of non-horses that carry the photo tag
    and a quarter of horses without it — the tag is the CNN's shortcut, so it is wrong on many of those."""
    half, quarter = n // 2, n // 4
    mix = make_dataset(half, seed=seed)
    others = make_dataset(quarter, seed=seed + 1, horse_fraction=0.0)
    rng = np.random.default_rng(seed)
    tagged = [add_tag(im, rng)[0] for im in others.images]
    horses = make_dataset(n - half - quarter, seed=seed + 2, horse_fraction=1.0, tag_fraction=0.0)
    named = [(f"lab {i}", im, CLASSES[int(y)]) for i, (im, y) in enumerate(zip(mix.images, mix.labels, strict=True))]
    named += [(f"tagged other {i}", im, CLASSES[0]) for i, im in enumerate(tagged)]
    named += [(f"untagged horse {i}", im, CLASSES[1]) for i, im in enumerate(horses.images)]
    return predicted(wb, named)


def sample_pool(wb: Workbench) -> list[Candidate]:
    """The bundled sample images (no true labels: the agreement task cannot use them)."""
    return predicted(wb, [(n, downscale(load_sample(n), MAX_SIDE), None) for n in sample_names()])


def zip_pool(wb: Workbench, data: bytes) -> list[Candidate]:
    """A zip of class folders (``lab.folders``): the folder is the true class, compared with the model's class name
    (case, spaces and underscores ignored)."""
    fs = read_class_zip(data)
    return predicted(wb, [(n, downscale(im, MAX_SIDE), fs.classes[int(y)])
                          for n, im, y in zip(fs.names, fs.images, fs.labels, strict=True)])


def run_pool(run: Run, limit: int = 200) -> list[Candidate]:
    """A batch run's images (thumbnails) with its labels, predictions and maps, one candidate per image."""
    t = run.table
    out: list[Candidate] = []
    for item, rows in t.groupby("item", sort=True):
        ok = rows[rows["prediction_name"].notna()] if "prediction_name" in rows else rows.iloc[:0]
        thumb = run.thumbnail(ok.iloc[0]) if len(ok) else None
        if thumb is None:
            continue
        maps = {}
        for _, row in ok.iterrows():
            m = run.map_of(row)
            if m is not None and isinstance(row["explainer"], str):
                maps[row["explainer"]] = (m, get_explainer(row["explainer"]).signed)
        first = ok.iloc[0]
        label = first.get("label_name")
        out.append(Candidate(str(item), thumb, None if label is None or label != label else str(label),
                             str(first["prediction_name"]), int(first.get("prediction", 0) or 0), maps))
        if len(out) >= limit:
            break
    if not out:
        raise StudyError("The run has no image with a prediction and a thumbnail; pick a finished run.")
    return out


def build_items(task: str, pool: list[Candidate], n_items: int, seed: int = 0, choices: int = 2) -> list[Item]:
    """``n_items`` items for ``task`` from ``pool`` (fewer when the pool is short); an item's pictures are indexes
    into ``pool``. Agreement items are half right, half wrong as far as the pool allows; forward-simulation options
    are the model's answer and ``choices - 1`` other classes; distinction items show ``choices`` images."""
    rng = np.random.default_rng([seed, 7])
    if task == "agreement":
        known = [i for i, c in enumerate(pool) if c.correct is not None]
        if not known:
            raise StudyError("The agreement task needs true labels: use the lab set, a zip of class folders or a "
                             "labelled batch run.")
        right = [i for i in rng.permutation(known) if pool[i].correct]
        wrong = [i for i in rng.permutation(known) if not pool[i].correct]
        n_wrong = min(len(wrong), n_items // 2)
        picked = [int(i) for i in rng.permutation(wrong[:n_wrong] + right[:n_items - n_wrong])]
        return [Item(f"i{j:02d}", (i,), pool[i].prediction, (YES, NO), YES if pool[i].correct else NO)
                for j, i in enumerate(picked)]
    classes = sorted({c.prediction for c in pool} | {c.label for c in pool if c.label})
    if len(classes) < 2:
        raise StudyError("These images give the model fewer than two classes; a study needs images of several classes.")
    if task == "forward":
        picked = [int(i) for i in rng.permutation(len(pool))[:n_items]]
        items = []
        for j, i in enumerate(picked):
            c = pool[i]
            rest = [k for k in classes if k != c.prediction]
            first = [c.label] if c.label and c.label in rest else []
            others = first + [str(k) for k in rng.permutation(rest) if k not in first]
            options = tuple(sorted([c.prediction, *others[:max(choices, 2) - 1]]))
            items.append(Item(f"i{j:02d}", (i,), "", options, c.prediction))
        return items
    if task != "distinction":
        raise StudyError("The task must be agreement, forward or distinction.")
    by_class = {k: [i for i, c in enumerate(pool) if c.prediction == k] for k in classes}
    targets = [k for k in classes if by_class[k] and len(pool) - len(by_class[k]) >= max(choices, 2) - 1]
    if not targets:
        raise StudyError("The model gave every image the same class; a distinction study needs images it calls "
                         "different classes.")
    items = []
    for j in range(n_items):
        k = targets[int(rng.integers(len(targets)))]
        hit = int(rng.choice(by_class[k]))
        distractors = [int(i) for i in rng.permutation([i for i, c in enumerate(pool) if c.prediction != k])]
        shown = [hit, *distractors[:max(choices, 2) - 1]]
        order = [int(o) for o in rng.permutation(len(shown))]
        pics: tuple[int, ...] = tuple(shown[o] for o in order)
        options = tuple(f"Image {p + 1}" for p in range(len(pics)))
        items.append(Item(f"i{j:02d}", pics, k, options, f"Image {pics.index(hit) + 1}"))
    return items


def build_checks(task: str, items: list[Item], count: int, seed: int = 0) -> list[Item]:
    """``count`` attention checks: no picture, the options of the task, one of them named in the question."""
    rng = np.random.default_rng([seed, 11])
    out = []
    for j in range(count):
        options = items[int(rng.integers(len(items)))].options
        out.append(Item(f"check{j + 1}", (), "", options, options[int(rng.integers(len(options)))], attention=True))
    return out


def compact(items: list[Item], pool: list[Candidate]) -> tuple[list[Item], list[Candidate]]:
    """Only the candidates some item shows, renumbered in order of use."""
    used = sorted({p for it in items for p in it.pictures})
    new = {old: k for k, old in enumerate(used)}
    kept = [Item(it.id, tuple(new[p] for p in it.pictures), it.prompt, it.options, it.truth, it.attention) for it in items]
    return kept, [pool[i] for i in used]
