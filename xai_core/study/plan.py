"""Seeded, counterbalanced assignment of conditions and items to participants (reproducible from the design's seed
and the participant's join order ``seq`` alone: nothing random is stored).

* Between-subject: participants are assigned in blocks of k (k conditions); each block is a seeded permutation of
  the conditions (permuted-block randomisation, e.g. Efird, "Blocked randomization with randomly selected block
  sizes", IJERPH 2011, with a fixed block size), so after any number of participants the counts per condition
  differ by at most one.
* Within-subject: each participant gets ``items_per_participant`` items (a seeded sample); sorted by their place in
  the pool, the r-th of them gets condition ``(r + seq) mod k`` — a Latin square over participants (with every item
  chosen, item j is shown under each condition to every k-th participant) and, for each participant, counts per
  condition that differ by at most one. The order of the trials is then shuffled (seeded per participant), so
  conditions are not confounded with position.
* Attention checks go to seeded positions, never first.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np

from .design import Design, Item

CHECK = "check"  # the condition recorded for an attention check
MIXED = "mixed"  # a within-subject participant's condition


@dataclass(frozen=True)
class Trial:
    """One trial of one participant: its position, the item and the condition it is shown under."""

    index: int
    item: Item
    condition: str


def between_condition(design: Design, seq: int) -> str:
    """The condition of the ``seq``-th participant (0-based) of a between-subject study."""
    k = len(design.conditions)
    block, pos = divmod(int(seq), k)
    order = np.random.default_rng([design.seed, 1, block]).permutation(k)
    return design.conditions[int(order[pos])]


def participant_condition(design: Design, seq: int) -> str:
    return between_condition(design, seq) if design.layout == "between" else MIXED


def plan(design: Design, seq: int) -> list[Trial]:
    """The trials of the ``seq``-th participant, in the order they are shown (see the module docstring)."""
    if seq < 0:
        raise ValueError("seq is a participant's 0-based join order")
    rng = np.random.default_rng([design.seed, 2, int(seq)])
    n, k = design.items_per_participant, len(design.conditions)
    chosen = np.sort(rng.choice(len(design.items), n, replace=False))
    if design.layout == "between":
        conds = [between_condition(design, seq)] * n
    else:
        conds = [design.conditions[(r + seq) % k] for r in range(n)]
    order = rng.permutation(n)
    shown: list[tuple[Item, str]] = [(design.items[int(chosen[o])], conds[int(o)]) for o in order]
    if design.checks:
        total = n + len(design.checks)
        slots = sorted(int(s) for s in rng.choice(np.arange(1, total), len(design.checks), replace=False))
        for slot, check in zip(slots, design.checks, strict=True):
            shown.insert(slot, (check, CHECK))
    return [Trial(i, item, cond) for i, (item, cond) in enumerate(shown)]


def balance(design: Design, seqs: list[int]) -> Counter[str]:
    """How many trials (within-subject) or participants (between-subject) each condition got over ``seqs``."""
    if design.layout == "between":
        return Counter(between_condition(design, s) for s in seqs)
    return Counter(t.condition for s in seqs for t in plan(design, s) if t.condition != CHECK)


def label(seq: int) -> str:
    """A participant as the results and exports name them: by join order, never by their token."""
    return f"P{int(seq) + 1:03d}"
