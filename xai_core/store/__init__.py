"""What must persist, in a real database through SQLAlchemy: SQLite by default (``XAI_DATA_DIR``/xai.db), a
PostgreSQL URL in ``XAI_DB_URL`` when shared; written transactionally, nothing lost on a restart.

``db`` holds the one engine/session helper (:func:`transaction`), the declarative :class:`Base` and
:class:`StoreError`; each table group is its own module on top of it (``concept_names``; the human-study tables
will sit beside it)."""

from .concept_names import NAME_CHARS, ConceptName, clean_name, delete_name, direction_digest, names_for, save_name
from .db import Base, StoreError, data_dir, default_url, dispose, engine, transaction

__all__ = ["NAME_CHARS", "Base", "ConceptName", "StoreError", "clean_name", "data_dir", "default_url", "delete_name",
           "direction_digest", "dispose", "engine", "names_for", "save_name", "transaction"]
