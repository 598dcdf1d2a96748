"""The dataset-debugging lab: the 'horse watermark' Clever Hans case, reproducible on a CPU.

    from xai_core import lab
    model = lab.load_lab_model()          # the shipped CNN (assets/lab_horse_cnn.pt)
    lab.shortcut_report(model)            # accuracy with and without the tag
    data = lab.make_dataset(200, seed=1)  # images, labels, tagged, masks, tag_boxes
    lab.load_lab_segmenter(), lab.load_lab_detector()   # dense lab models; lab.dense_tables(seg, det) for the page
"""

from . import influence, model_manipulation, road, roar, samples  # samples: registers the lab's sample images
from .data import CLASSES, SIZE, LabSet, add_tag, make_dataset
from .data_randomisation import map_similarity, shuffled_label_model
from .dense_report import dense_tables
from .detector import load_lab_detector  # registers the lab detector
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
from .segmenter import load_lab_segmenter  # registers the lab segmenter
from .spray import SprayResult, spray

__all__ = ["CLASSES", "SIZE", "LabCNN", "LabSet", "SprayResult", "accuracy", "add_tag", "as_spec", "dense_tables",
           "helpfulness", "influence", "load_lab_detector", "load_lab_model", "load_lab_segmenter", "make_dataset",
           "map_similarity", "maps_for", "model_manipulation",
           "pointing_on_tag_and_object", "road", "roar", "samples", "shortcut_report", "shuffled_label_model", "spray",
           "to_tensor", "train"]
