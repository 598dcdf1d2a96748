"""Human-study mode (issue 25): does a map help a person understand the model?

``design`` (the frozen study value: task, conditions, items, checks, consent), ``plan`` (seeded counterbalanced
assignment), ``sources`` (the image pool and the items for a task), ``pictures`` (rendered once, at publishing),
``storage`` and ``answers`` (the database: publish, open, join, submit, responses; the tables are in
``xai_core.store.study_tables``), ``stats`` and ``analysis`` (the results), ``export`` (CSV and Parquet, formula-safe).
UI-free: ``views/study_*.py`` draw it.
"""

from . import analysis, answers, export, pictures, plan, sources, stats, storage
from .design import LAYOUTS, NONE, TASKS, Design, Item, StudyError, make, question

__all__ = ["LAYOUTS", "NONE", "TASKS", "Design", "Item", "StudyError", "analysis", "answers", "export", "make",
           "pictures", "plan", "question", "sources", "stats", "storage"]
