"""Fixtures of the Python binding's tests.

The PostgreSQL server is the tests' own: scripts/pg-test-server.sh starts a
throwaway cluster (unix socket only) for the session and stops it at the
end. Set KG_PG_DIR to use one started by ctest's fixture instead (it is
then left running for ctest to stop). KG_PYTHON_NO_PG=1 skips PostgreSQL.
"""
import asyncio
import os
import shutil
import socket
import subprocess
import sys
import tempfile

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
PG_SCRIPT = os.path.join(ROOT, "scripts", "pg-test-server.sh")
PSQL = shutil.which("psql") or "/usr/lib/postgresql/15/bin/psql"


def child_env():
    """The environment for the server scripts and psql: without the
    sanitizer runtime a sanitized test run preloads (PostgreSQL's tools
    hang under it)."""
    env = dict(os.environ)
    for k in ("LD_PRELOAD", "ASAN_OPTIONS", "UBSAN_OPTIONS", "PYTHONMALLOC"):
        env.pop(k, None)
    return env


def sh(*args, check=True):
    return subprocess.run(list(args), check=check, capture_output=True, text=True, env=child_env())


class PgServer:
    def __init__(self, sockdir):
        self.sockdir = sockdir
        self.uri = f"postgresql:///kgtest?host={sockdir}&user=postgres"
        self.socket = os.path.join(sockdir, ".s.PGSQL.5432")
        self.local_port = None  # 127.0.0.1 port relayed to the socket, if any

    def psql(self, sql, db="kgtest"):
        sh(PSQL, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", self.sockdir, "-U", "postgres", "-d", db, "-c", sql)

    def env(self):
        """DB_* settings pointing at this server (the seed's variables)."""
        return {"DB_HOST": self.sockdir, "DB_PORT": "5432", "DB_USER": "postgres", "DB_PASSWORD": "",
                "DB_NAME": "kgtest"}


def _start(dirpath):
    return sh("sh", PG_SCRIPT, "start", dirpath).stdout.strip()


@pytest.fixture(scope="session")
def pg():
    if os.environ.get("KG_PYTHON_NO_PG") == "1":
        pytest.skip("KG_PYTHON_NO_PG=1")
    given = os.environ.get("KG_PG_DIR")
    own = None
    if given:
        sockdir = os.path.abspath(given)
    else:
        own = tempfile.mkdtemp(prefix="kgpy", dir="/tmp")
        sockdir = own
        _start(sockdir)
    srv = PgServer(sockdir)
    fwd = None
    try:
        # The seed's own user and database, for the samples that name them.
        try:
            srv.psql("CREATE ROLE graph_user LOGIN PASSWORD 'secure_password'")
        except subprocess.CalledProcessError:
            pass  # a server kept from an earlier run
        try:
            srv.psql("CREATE DATABASE knowledge_graph OWNER graph_user")
        except subprocess.CalledProcessError:
            pass
        # localhost:5432 for the samples, only if nothing else holds it.
        with socket.socket() as s:
            free = s.connect_ex(("127.0.0.1", 5432)) != 0
        if free:
            fwd = subprocess.Popen([sys.executable, os.path.join(HERE, "pgforward.py"), "5432", srv.socket],
                                   stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=child_env())
            if fwd.stdout.readline().strip() == "ready":
                srv.local_port = 5432
        yield srv
    finally:
        if fwd is not None:
            fwd.stdin.close()
            try:
                fwd.wait(timeout=10)
            except subprocess.TimeoutExpired:
                fwd.kill()
                fwd.wait()
        if own:
            sh("sh", PG_SCRIPT, "stop", own, check=False)


@pytest.fixture
def tmp_cwd(tmp_path, monkeypatch):
    """Samples write relative file names (graph.db, migration.jsonl.gz)."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


def run(coro):
    return asyncio.run(coro)
