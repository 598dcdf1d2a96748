"""Average Drop and Increase in Confidence (Chattopadhay, Sarkar, Howlader & Balasubramanian, WACV 2018): the image
multiplied by the map, scaled to [0, 1]; does the class probability fall, or even rise?"""

from __future__ import annotations

import torch

from ..models.spec import ModelSpec
from .registry import Outputs, Probe, metric

REF = ("Chattopadhay, Sarkar, Howlader & Balasubramanian 2018, 'Grad-CAM++: Generalized Gradient-based Visual "
       "Explanations for Deep Convolutional Networks', WACV. arXiv:1710.11063")
PASSES = "1 forward pass (shared by Average Drop and Increase; +1 shared)"


def masked(x: torch.Tensor, m: torch.Tensor) -> Probe:
    """One input: the normalised input times the map min-max scaled to [0, 1] (as torchcam: ``m − min`` over
    ``max − min + 1e-8``); in normalised units 0 is the normalisation's mean colour."""
    lo = m.amin()
    scaled = (m - lo) / ((m.amax() - lo) + 1e-8)

    def make(a: int, b: int) -> torch.Tensor:
        return (x * scaled.to(x.device, x.dtype)).expand(b - a, -1, -1, -1)

    return Probe(1, make, lambda o: 0.0, share="masked by the map")


def drop(o: Outputs) -> float:
    return max(0.0, o.base_probability - float(o.probability[0])) / o.base_probability


def increase(o: Outputs) -> float:
    return float(float(o.probability[0]) > o.base_probability)


@metric("average_drop", title="Average Drop in confidence", short="Avg drop", order=42, kind="probe", better="lower",
        passes=PASSES, reference=REF, default=False,
        summary="Relative fall of the class probability when the image is multiplied by the map (0 = none).")
def average_drop(model: ModelSpec, x: torch.Tensor, small_map: torch.Tensor, *, seed: int = 0) -> Probe:
    """max(0, p(x) − p(x ⊙ m)) / p(x) for the map m scaled to [0, 1] (Chattopadhay et al. 2018, arXiv:1710.11063);
    a set's Average Drop is the mean of these. Lower = the map keeps what the class needs."""
    p = masked(x, small_map)
    p.summarise = drop
    return p


@metric("confidence_increase", title="Increase in confidence", short="Conf. increase", order=44, kind="probe",
        better="higher", passes=PASSES, reference=REF, default=False,
        summary="1 if the class probability rises when the image is multiplied by the map, else 0.")
def confidence_increase(model: ModelSpec, x: torch.Tensor, small_map: torch.Tensor, *, seed: int = 0) -> Probe:
    """[p(x ⊙ m) > p(x)] for the map m scaled to [0, 1] (Chattopadhay et al. 2018, arXiv:1710.11063); a set's
    Increase in Confidence is the share of its images where this is 1. Higher = better."""
    p = masked(x, small_map)
    p.summarise = increase
    return p
