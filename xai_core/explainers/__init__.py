"""Explainers: one file per method, each registered with one decorator (see ``registry``).

Importing this package registers them all (the UI groups them by family).
"""

from . import (  # noqa: F401
    cam,
    gradcam,
    gradcam_pp,
    gradient,
    guided_backprop,
    guided_gradcam,
    input_x_gradient,
    integrated_gradients,
    kernel_shap,
    lime,
    lrp,
    meaningful_perturbation,
    occlusion,
    rise,
    scorecam,
    smoothgrad,
)
