"""Lessons for a lecture: small computations over the real engine (through a Workbench), one idea each.

The Learn page (``views/learn.py``) draws them; this package is UI-free. Every lesson is fast on a CPU with its
default settings (seconds on the bundled model; Integrated Gradients' 64 path points about 10 s), and its defaults
show what its text says (``tests/test_lessons.py`` checks each claim). :data:`LESSONS` lists them in teaching
order with the idea each one teaches; their deep link is ``/learn?lesson=<id>``.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Lesson:
    id: str
    title: str
    idea: str
    reference: str


LESSONS: tuple[Lesson, ...] = (
    Lesson("shattered", "1 · Shattered gradients",
           "A plain gradient map changes when the image moves by one pixel; SmoothGrad's noise averages that away.",
           "Balduzzi et al. 2017, arXiv:1702.08591; Smilkov et al. 2017, arXiv:1706.03825"),
    Lesson("ig_path", "2 · The Integrated Gradients path",
           "IG sums gradients along a path from a baseline; the sum matches the score change (completeness) once "
           "the path is sampled finely enough, and the baseline decides what 'missing' means.",
           "Sundararajan et al. 2017, arXiv:1703.01365; Sturmfels, Lundberg & Lee 2020, Distill"),
    Lesson("cam", "3 · CAM is a weighted sum of feature maps",
           "Grad-CAM weights each channel of a layer by its mean gradient and adds them up; the ReLU and the layer "
           "are choices.",
           "Zhou et al. 2016, arXiv:1512.04150; Selvaraju et al. 2017, arXiv:1610.02391"),
    Lesson("perturbation", "4 · Perturbation: RISE and LIME",
           "Black-box maps come from scoring many masked images; they converge slowly and depend on the seed.",
           "Petsiuk et al. 2018, arXiv:1806.07421; Ribeiro et al. 2016, arXiv:1602.04938"),
    Lesson("pitfalls", "5 · Pitfalls, shown",
           "Per-map scaling hides magnitude, a map can survive randomising the weights it claims to explain, and "
           "deletion rewards scattered maps.",
           "Adebayo et al. 2018, arXiv:1810.03292; Hooker et al. 2019, arXiv:1806.10758"),
    Lesson("local_global", "6 · Local vs global: why a heatmap is not a concept",
           "A heatmap shows where the model looked in one image; a concept shows what it uses across many images of "
           "the class. On the lab CNN: one horse's Grad-CAM next to the top discovered concept's crops.",
           "Fel et al. 2023 (CRAFT), CVPR, arXiv:2211.10154; Kim et al. 2018 (TCAV), ICML, arXiv:1711.11279"),
)


def lesson(lesson_id: str) -> Lesson | None:
    """The lesson with this id, or None (ids come from URLs: unknown ones are ignored)."""
    return next((item for item in LESSONS if item.id == lesson_id), None)
