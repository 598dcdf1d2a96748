"""A human-study design: the task, the conditions, the items, attention checks, consent — a frozen, validated value
that is stored as JSON when the study is published and never changes afterwards.

Tasks follow the human-evaluation protocols of HIVE (Kim et al., "HIVE: Evaluating the Human Interpretability of
Visual Explanations", ECCV 2022) and Shen & Huang ("How Useful Are the Machine-Generated Interpretations to General
Users?", HCOMP 2020):

* ``agreement``: the image (with or without a map) and the model's answer; is the model right?
* ``forward``: forward simulation: the image (and map); which class did the model answer?
* ``distinction``: N images (and maps); which one did the model classify as the named class?

A condition is ``none`` (no map) or an explainer id. Every text a designer or participant types is untrusted: it is
cleaned (no control, bidi or zero-width characters) and bounded here, and escaped wherever it is shown.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from ..errors import XaiError
from ..store.concept_names import clean_name

TASKS = {"agreement": "Is the model right?", "forward": "Predict the model's answer",
         "distinction": "Which image did the model classify as the class?"}
LAYOUTS = {"between": "between-subject: each participant sees one condition",
           "within": "within-subject: each participant sees every condition, on different items"}
NONE = "none"
YES, NO = "Yes, the model is right", "No, the model is wrong"
NAME_CHARS, CONSENT_CHARS, LINE_CHARS, QUESTION_CHARS, ANSWER_CHARS = 80, 4000, 400, 160, 200
MAX_CONDITIONS, MAX_ITEMS, MAX_CHECKS, MAX_QUESTIONS, MAX_DAYS = 4, 200, 10, 3, 365


class StudyError(XaiError):
    """A study cannot be designed, found, joined or answered as asked; the message says what to do."""


def clean_text(text: object, limit: int) -> str:
    """One line of untrusted text: printable, white space runs as one space, at most ``limit`` characters."""
    return clean_name(text, limit)


def clean_paragraphs(text: object, limit: int = CONSENT_CHARS) -> str:
    """Untrusted text of several lines (a consent form): each line cleaned as :func:`clean_text`, blank runs kept as
    one empty line, at most ``limit`` characters in all."""
    if not isinstance(text, str):
        return ""
    lines = [clean_text(line, LINE_CHARS) for line in text[: limit * 4].splitlines()]
    kept: list[str] = []
    for line in lines:
        if line or (kept and kept[-1]):
            kept.append(line)
    return "\n".join(kept).strip()[:limit].strip()


@dataclass(frozen=True)
class Item:
    """One question: the pictures it shows (indexes into the study's pictures, in order), what it names (the model's
    answer for ``agreement``, the class for ``distinction``), the answer options and the correct one."""

    id: str
    pictures: tuple[int, ...]
    prompt: str
    options: tuple[str, ...]
    truth: str
    attention: bool = False

    def __post_init__(self) -> None:
        if self.truth not in self.options or len(set(self.options)) != len(self.options) or len(self.options) < 2:
            raise StudyError(f"Item {self.id}: the options must be distinct, at least two, and hold the answer.")


@dataclass(frozen=True)
class Design:
    """What a designer chose; see the module docstring. ``items`` are the pool the participants' items are drawn
    from; ``checks`` the attention checks (each participant gets all of them, at seeded positions)."""

    name: str
    task: str
    conditions: tuple[str, ...]
    layout: str
    items_per_participant: int
    items: tuple[Item, ...]
    checks: tuple[Item, ...] = ()
    consent: str = ""
    questions: tuple[str, ...] = ()
    show_score: bool = True
    max_failed_checks: int = 0
    seed: int = 0
    days_open: int = 14
    source: str = ""
    model: str = ""
    labels: dict[str, str] = field(default_factory=dict)  # condition -> its title as shown on the results page

    @property
    def trials(self) -> int:
        """How many trials each participant answers (items and attention checks)."""
        return self.items_per_participant + len(self.checks)

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=True, sort_keys=True)

    @staticmethod
    def from_json(text: str) -> Design:
        d: dict[str, Any] = json.loads(text)
        items = tuple(Item(**{**i, "pictures": tuple(i["pictures"]), "options": tuple(i["options"])}) for i in d["items"])
        checks = tuple(Item(**{**i, "pictures": tuple(i["pictures"]), "options": tuple(i["options"])}) for i in d["checks"])
        return Design(**{**d, "items": items, "checks": checks, "conditions": tuple(d["conditions"]),
                         "questions": tuple(d["questions"])})


def make(name: object, task: str, conditions: Sequence[str], layout: str, items_per_participant: int,
         items: Sequence[Item], *, checks: Sequence[Item] = (), consent: object = "", questions: Sequence[object] = (),
         show_score: bool = True,
         max_failed_checks: int = 0, seed: int = 0, days_open: int = 14, source: str = "", model: str = "",
         labels: dict[str, str] | None = None) -> Design:
    """A validated :class:`Design`: untrusted text cleaned and bounded, every choice checked (a :class:`StudyError`
    with the fix otherwise)."""
    title = clean_text(name, NAME_CHARS)
    if not title:
        raise StudyError("Give the study a name (up to 80 characters).")
    if task not in TASKS:
        raise StudyError(f"The task must be one of {', '.join(TASKS)}.")
    if layout not in LAYOUTS:
        raise StudyError("The design must be between-subject or within-subject.")
    conds = tuple(dict.fromkeys(str(c) for c in conditions))
    if not 2 <= len(conds) <= MAX_CONDITIONS:
        raise StudyError(f"Choose 2 to {MAX_CONDITIONS} different conditions (no map, or a method).")
    if not items or len(items) > MAX_ITEMS:
        raise StudyError(f"A study needs 1 to {MAX_ITEMS} items; the chosen images gave {len(items)}.")
    n = int(items_per_participant)
    if not 1 <= n <= len(items):
        raise StudyError(f"Items per participant must be between 1 and {len(items)} (the items available).")
    if layout == "within" and n < len(conds):
        raise StudyError(f"A within-subject study needs at least {len(conds)} items per participant (one per condition).")
    if len(checks) > MAX_CHECKS or not 0 <= int(max_failed_checks) <= len(checks):
        raise StudyError(f"Up to {MAX_CHECKS} attention checks; the failures allowed cannot exceed them.")
    asked = tuple(q for q in (clean_text(q, QUESTION_CHARS) for q in questions) if q)[:MAX_QUESTIONS]
    if not 1 <= int(days_open) <= MAX_DAYS:
        raise StudyError(f"A study stays open 1 to {MAX_DAYS} days.")
    shown = {c: clean_text((labels or {}).get(c, c), NAME_CHARS) or c for c in conds}
    return Design(title, task, conds, layout, n, tuple(items), tuple(checks), clean_paragraphs(consent), asked,
                  bool(show_score), int(max_failed_checks), int(seed), int(days_open), clean_text(source, NAME_CHARS),
                  clean_text(model, NAME_CHARS * 2), shown)


def question(design: Design, item: Item) -> str:
    """The question of ``item`` as plain text (the caller escapes it where it is shown as Markdown)."""
    if item.attention:
        return f"Attention check: please choose “{item.truth}”."
    if design.task == "agreement":
        return f"The model answered “{item.prompt}”. Is the model right?"
    if design.task == "forward":
        return "Which class did the model answer for this image?"
    return f"Which image did the model classify as “{item.prompt}”?"
