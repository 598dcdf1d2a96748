"""Typed errors whose message is a sentence a user can act on.

The UI shows ``str(err)`` with ``st.error`` and never a traceback, so every message says what
went wrong *and* what to do about it.
"""

from __future__ import annotations


class XaiError(Exception):
    """Base class of every error xai_core raises on purpose."""


class ImageError(XaiError):
    """An uploaded file could not be turned into an RGB image."""


class ModelLoadError(XaiError):
    """A model (bundled, torchvision or a user checkpoint) could not be loaded."""


class ExplainerError(XaiError):
    """An explainer cannot run on this model/input (e.g. CAM without a GAP-linear head)."""


class RunError(XaiError):
    """A batch run's inputs or run folder cannot be read: a path outside its root, a damaged or oversized file."""


class Cancelled(XaiError):
    """A long run was stopped by the user between two batches."""
