"""A throw-away PostgreSQL server for the study tests, when Debian's binaries are installed (``postgresql``): a fresh
cluster (initdb) in a temporary folder, a free port on 127.0.0.1, trust authentication, fsync off (test data only);
run as ``nobody`` when the tests run as root (PostgreSQL refuses root). Stopped and deleted afterwards."""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

BINS = sorted(glob.glob("/usr/lib/postgresql/*/bin/postgres"))
AVAILABLE = bool(BINS)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def postgres() -> Iterator[str]:
    """Start a server; yield its SQLAlchemy URL (``postgresql+psycopg://xai@127.0.0.1:PORT/postgres``)."""
    if not AVAILABLE:
        raise RuntimeError("no PostgreSQL binaries under /usr/lib/postgresql")
    bin_dir = Path(BINS[-1]).parent
    folder = Path(tempfile.mkdtemp(prefix="xai-pg-"))
    user: str | None = None
    if os.geteuid() == 0:
        user = "nobody"
        nobody = pwd.getpwnam(user)
        os.chown(folder, nobody.pw_uid, nobody.pw_gid)
    data, port = folder / "data", _free_port()
    log = folder / "log"
    subprocess.run([str(bin_dir / "initdb"), "-D", str(data), "-U", "xai", "--auth=trust", "-E", "UTF8", "--no-sync"],
                   check=True, capture_output=True, user=user, cwd=folder, timeout=120)
    with open(os.devnull, "wb") as null:
        proc = subprocess.Popen([str(bin_dir / "postgres"), "-D", str(data), "-p", str(port), "-k", str(folder),
                                 "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "max_connections=100",
                                 "-c", f"log_directory={log}"], stdout=null, stderr=null, user=user, cwd=folder)
    try:
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                time.sleep(0.5)  # accepting connections a moment after the port opens
                break
            except OSError:
                time.sleep(0.2)
        else:
            raise RuntimeError("PostgreSQL did not start")
        yield f"postgresql+psycopg://xai@127.0.0.1:{port}/postgres"
    finally:
        proc.send_signal(signal.SIGINT)  # fast shutdown: open connections are closed, not waited for
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=30)
        shutil.rmtree(folder, ignore_errors=True)
