"""The concept-name store (xai_core.store): names survive a restart (a new engine on the same database), 8 threads
writing and reading at once lose nothing, namespaces do not see each other, hostile names are stored cleaned and
bounded, and an unreachable server is one sentence. Every test runs on a SQLite file; with ``XAI_TEST_PG_URL`` set
to a PostgreSQL database (e.g. ``postgresql://postgres@127.0.0.1:5432/xai_test``) the same tests run there too."""

from __future__ import annotations

import os
import secrets
import threading
import time
import unicodedata

import numpy as np
import pytest
import torch
from sqlalchemy import text

from xai_core import store

PG = os.environ.get("XAI_TEST_PG_URL")
MODEL, LAYER = "f" * 32, "features.9"


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request, tmp_path):
    if request.param == "sqlite":
        u = f"sqlite:///{tmp_path / 'xai.db'}"
    elif not PG:
        pytest.skip("no PostgreSQL server: set XAI_TEST_PG_URL to run these tests on one")
    else:
        u = PG
    yield u
    store.dispose(u)


def _ns() -> str:
    return "test:" + secrets.token_hex(8)  # a fresh namespace: a shared PostgreSQL keeps other runs' rows


def _direction(seed: int, c: int = 32) -> np.ndarray:
    v = np.random.default_rng(seed).random(c).astype(np.float32)
    return v / np.linalg.norm(v)


def test_names_survive_a_restart_and_upsert_replaces(url):
    ns = _ns()
    for i in range(3):
        store.save_name(ns, MODEL, LAYER, 1, _direction(i), f"concept {i}", url=url)
    store.save_name(ns, MODEL, LAYER, 1, _direction(0), "the corner tag", url=url)  # replaces, does not add
    store.dispose(url)  # the process's engine is gone: as after a restart
    names = store.names_for(ns, MODEL, LAYER, 1, url=url)
    assert names == {store.direction_digest(_direction(0)): "the corner tag",
                     store.direction_digest(_direction(1)): "concept 1",
                     store.direction_digest(_direction(2)): "concept 2"}
    assert store.names_for(ns, MODEL, LAYER, 0, url=url) == {}  # another class
    assert store.names_for(ns, MODEL, "features.6", 1, url=url) == {}  # another layer
    assert store.names_for(ns, "e" * 32, LAYER, 1, url=url) == {}  # other weights
    assert store.save_name(ns, MODEL, LAYER, 1, _direction(1), " \x00 ", url=url) == ""  # empty once cleaned: deleted
    assert store.delete_name(ns, MODEL, LAYER, 1, _direction(2), url=url)
    assert not store.delete_name(ns, MODEL, LAYER, 1, _direction(2), url=url)
    assert list(store.names_for(ns, MODEL, LAYER, 1, url=url).values()) == ["the corner tag"]
    if url.startswith("sqlite"):
        with store.engine(url).connect() as c:
            assert c.execute(text("PRAGMA journal_mode")).scalar() == "wal"
            assert c.execute(text("PRAGMA busy_timeout")).scalar() == store.db.BUSY_MS


def test_eight_threads_writing_and_reading_lose_nothing(url):
    ns, per, errors = _ns(), 25, []
    start = threading.Barrier(8)

    def work(t: int) -> None:
        try:
            start.wait()
            for i in range(per):
                store.save_name(ns, MODEL, LAYER, t, _direction(1000 * t + i), f"t{t} n{i}", url=url)
                store.save_name(ns, MODEL, LAYER, 99, _direction(7), f"shared by t{t}", url=url)  # all upsert one row
                seen = store.names_for(ns, MODEL, LAYER, t, url=url)
                assert len(seen) == i + 1, (t, i, len(seen))  # this thread's own writes so far, all of them
        except Exception as e:  # noqa: BLE001 - reported below, with the thread
            errors.append((t, repr(e)))

    threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(120)
    assert not errors, errors[:3]
    for t in range(8):
        names = store.names_for(ns, MODEL, LAYER, t, url=url)
        assert sorted(names.values()) == sorted(f"t{t} n{i}" for i in range(per))
    shared = store.names_for(ns, MODEL, LAYER, 99, url=url)
    assert len(shared) == 1 and next(iter(shared.values())).startswith("shared by t")


def test_two_namespaces_do_not_see_each_other(url):
    a, b = _ns(), _ns()
    store.save_name(a, MODEL, LAYER, 1, _direction(0), "stripes", url=url)
    store.save_name(b, MODEL, LAYER, 1, _direction(0), "zebra legs", url=url)
    store.save_name(b, MODEL, LAYER, 1, _direction(1), "grass", url=url)
    assert list(store.names_for(a, MODEL, LAYER, 1, url=url).values()) == ["stripes"]
    assert sorted(store.names_for(b, MODEL, LAYER, 1, url=url).values()) == ["grass", "zebra legs"]
    store.delete_name(a, MODEL, LAYER, 1, _direction(0), url=url)
    assert store.names_for(a, MODEL, LAYER, 1, url=url) == {}
    assert len(store.names_for(b, MODEL, LAYER, 1, url=url)) == 2  # b's names untouched by a's delete


HOSTILE = {
    "10 kB": "x" * 10_000,
    "NULs": "tag\x00\x00 name\x00",
    "RTL override": "\u202egat renroc\u202c and \u2066isolate\u2069 \u200bzero width",
    "HTML": "<script>alert(1)</script><img src=x onerror=alert(2)>",
    "SQL": "'); DROP TABLE concept_names; --",
    "lines": "two\nlines\r\n\tand tabs",
    "astral": "🐴 horse tag 🏷️ " * 10,
}


def test_hostile_names_are_stored_cleaned_and_bounded(url):
    ns = _ns()
    for i, (kind, name) in enumerate(HOSTILE.items()):
        stored = store.save_name(ns, MODEL, LAYER, 2, _direction(50 + i), name, url=url)
        assert 0 < len(stored) <= store.NAME_CHARS, kind
        assert not any(unicodedata.category(c)[0] == "C" for c in stored), (kind, stored)  # no control/bidi/NUL
        assert "  " not in stored and stored == stored.strip(), kind
    back = store.names_for(ns, MODEL, LAYER, 2, url=url)
    by_seed = {store.direction_digest(_direction(50 + i)): k for i, k in enumerate(HOSTILE)}
    got = {by_seed[d]: n for d, n in back.items()}
    assert got["10 kB"] == "x" * store.NAME_CHARS
    assert got["NULs"] == "tag name"
    assert got["RTL override"] == "gat renroc and isolate zero width"
    assert got["HTML"] == HOSTILE["HTML"][: store.NAME_CHARS]  # stored literally; escaped where it is shown
    assert got["SQL"] == HOSTILE["SQL"]  # a bound parameter: the table is still there (names_for just read it)
    assert got["lines"] == "two lines and tabs"
    with pytest.raises(store.StoreError, match="namespace"):
        store.names_for("", MODEL, LAYER, 2, url=url)
    with pytest.raises(store.StoreError, match="layer name"):
        store.save_name(ns, MODEL, "a" * 300, 2, _direction(0), "x", url=url)
    with pytest.raises(store.StoreError, match="class"):
        store.save_name(ns, MODEL, LAYER, -1, _direction(0), "x", url=url)
    with pytest.raises(store.StoreError, match="finite"):
        store.save_name(ns, MODEL, LAYER, 2, np.full(4, np.nan), "x", url=url)


def test_direction_digest_is_content_stable_to_float32_noise_and_scale():
    v = _direction(3, 256)
    d = store.direction_digest(v)
    eps = np.finfo(np.float32).eps
    assert store.direction_digest(v * (1 + 4 * eps)) == d  # a few ulps (another CPU's summation order)
    assert store.direction_digest(3.0 * v) == d  # unit norm first
    assert store.direction_digest(torch.from_numpy(v)) == d
    assert store.direction_digest(_direction(4, 256)) != d
    assert store.direction_digest(v[:-1]) != d


def test_unreachable_postgresql_is_one_sentence_without_the_password():
    u = "postgresql://xai:s3cret-pw@127.0.0.1:1/xai"  # port 1: nothing listens there
    start = time.monotonic()
    with pytest.raises(store.StoreError) as err:
        store.names_for("test:a", MODEL, LAYER, 1, url=u)
    message = str(err.value)
    assert time.monotonic() - start < 15
    assert "s3cret-pw" not in message and "127.0.0.1" in message and "XAI_DB_URL" in message
    assert "\n" not in message and message.count(". ") == 0 and message.endswith("."), message
    with pytest.raises(store.StoreError, match="not a database URL"):
        store.names_for("test:a", MODEL, LAYER, 1, url="no url at all")
    store.dispose(u)


def test_default_database_is_a_sqlite_file_in_the_data_folder(monkeypatch, tmp_path):
    monkeypatch.delenv(store.db.URL_ENV, raising=False)
    monkeypatch.setenv(store.db.DIR_ENV, str(tmp_path / "data"))
    assert store.default_url() == f"sqlite:///{tmp_path / 'data' / 'xai.db'}"
    store.save_name("test:a", MODEL, LAYER, 1, _direction(0), "made the folder")
    assert (tmp_path / "data" / "xai.db").is_file()
    store.dispose(store.default_url())
