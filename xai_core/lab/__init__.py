"""The dataset-debugging lab: the 'horse watermark' Clever Hans case, reproducible on a CPU.

    from xai_core import lab
    model = lab.load_lab_model()          # the shipped CNN (assets/lab_horse_cnn.pt)
    lab.shortcut_report(model)            # accuracy with and without the tag
    data = lab.make_dataset(200, seed=1)  # images, labels, tagged, masks, tag_boxes
"""

from . import influence, model_manipulation, road, roar, samples  # samples: registers the lab's sample images
from .data import CLASSES, SIZE, LabSet, add_tag, make_dataset
from .data_randomisation import map_similarity, shuffled_label_model
from .influence import helpfulness
from .model import (
           LabCNN,
           accuracy,
           as_spec,
           load_lab_model,
           maps_for,
           pointing_on_tag_and_object,
           shortcut_report,
           to_tensor,
           train,
)
from .spray import SprayResult, spray

__all__ = ["CLASSES", "SIZE", "LabCNN", "LabSet", "SprayResult", "accuracy", "add_tag", "as_spec", "helpfulness",
           "influence", "load_lab_model", "make_dataset", "map_similarity", "maps_for", "model_manipulation",
           "pointing_on_tag_and_object", "road", "roar", "samples", "shortcut_report", "shuffled_label_model", "spray",
           "to_tensor", "train"]
