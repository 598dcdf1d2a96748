"""Explainers: one file per method, each registered with one decorator (see ``registry``).

Importing this package registers them all, in the order the UI lists them.
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
    smoothgrad,
)
