"""Explainers: one file per method, each registered with one decorator (see ``registry``).

Importing this package imports every module in it (discovered with ``pkgutil``, in name order), which
registers them: a new method is one new file here and nothing else.
"""

import importlib
import pkgutil

DISCOVERED = tuple(importlib.import_module(f"{__name__}.{m.name}") for m in pkgutil.iter_modules(__path__))
