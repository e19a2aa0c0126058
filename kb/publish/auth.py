"""Analyst logins for `excon serve`: password hashes, the credentials file, sessions kept on
the server, and limits on failed logins.

- **Passwords** are PBKDF2-SHA256 hashes in Django's format (`pbkdf2_sha256$iterations$salt$
  base64`), the format datasette-auth-passwords writes, so existing credentials files keep
  working.
- **Credentials** (`name:hash` lines from a file and from EXCON_CREDENTIALS) are read again
  when the file changes: removing a line logs that analyst out on the next request.
- **Sessions** live in a small SQLite file shared by every server worker. The `ds_actor`
  cookie carries a signed session id; a session is valid while it is in the file, unexpired
  and not revoked, and its analyst is still in the credentials. Logging out revokes it, so a
  copied cookie is refused afterwards.
- **Failed logins** are counted per analyst name and per client address in the same file.
  After `FREE_FAILURES` failures within `FAILURE_WINDOW_S`, each further attempt must wait
  twice as long as the one before (1 s, 2 s, 4 s … at most `MAX_DELAY_S`); an attempt that
  comes too early is refused without checking the password.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import os
import re
import secrets
import sqlite3
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

ALGORITHM = "pbkdf2_sha256"
ITERATIONS = 480_000
CREDENTIALS_ENV = "EXCON_CREDENTIALS"
USER = re.compile(r"^[A-Za-z0-9_.-]+$")
SESSION_HOURS = 8.0
FREE_FAILURES = 5
FAILURE_WINDOW_S = 15 * 60
MAX_DELAY_S = 300.0
MAX_PASSWORD = 1024  # characters; PBKDF2 hashes any length, but a 1 MB password costs time


class CredentialsError(Exception):
    pass


def hash_password(password: str, salt: str | None = None, iterations: int = ITERATIONS) -> str:
    salt = salt or secrets.token_hex(16)
    digest = hashlib.pbkdf2_hmac("sha256", password.encode("utf-8"), salt.encode("utf-8"),
                                 iterations)
    return f"{ALGORITHM}${iterations}${salt}${base64.b64encode(digest).decode('ascii')}"


def verify_password(password: str, hashed: str) -> bool:
    """Whether `password` has the hash `hashed`, in constant time for a given hash."""
    parts = hashed.strip().split("$")
    if len(parts) != 4 or parts[0] != ALGORITHM or not parts[1].isdigit():
        return False
    return hmac.compare_digest(hashed.strip(), hash_password(password, parts[2], int(parts[1])))


# An unknown analyst's password is checked against this, so that it costs what a known one's does.
_DECOY = hash_password(secrets.token_urlsafe(16))


def parse_credentials(name: str, text: str, problems: list[str] | None = None
                      ) -> dict[str, str]:
    """`name:hash` lines. A bad line is reported (into `problems`, else raised) and the good
    lines still count: one slip must not lock every analyst out."""
    out: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        user, sep, hashed = line.partition(":")
        if not sep or not USER.match(user) or not hashed.startswith(f"{ALGORITHM}$"):
            problem = (f"{name}:{number}: expected name:{ALGORITHM}$… (make the hash with "
                       "`excon password-hash`); the line is skipped")
            if problems is None:
                raise CredentialsError(problem)
            problems.append(problem)
            continue
        out[user] = hashed
    return out


def credential_mark(hashed: str) -> str:
    """What a session keeps of the credential it was opened with: a password change (a new
    hash) or a removal ends every session opened before."""
    return hashlib.sha256(hashed.encode("utf-8")).hexdigest()[:32]


class Credentials:
    """The analysts who may log in: a file (read again when it changes) and an environment
    variable (lines or commas)."""

    def __init__(self, path: str | Path | None = None,
                 environ: dict[str, str] | None = None, check_every_s: float = 1.0) -> None:
        environ = dict(os.environ) if environ is None else environ
        self.path = Path(path) if path is not None else None
        self.fixed = parse_credentials(CREDENTIALS_ENV,
                                       environ.get(CREDENTIALS_ENV, "").replace(",", "\n"))
        self.check_every_s = check_every_s
        self._stamp: tuple[float, int] | None = None
        self._checked = 0.0
        self._from_file: dict[str, str] = {}
        self._lock = threading.Lock()
        self._reload(initial=True)

    @classmethod
    def of(cls, users: dict[str, str]) -> Credentials:
        """A fixed set of `name: hash` pairs (tests and the Python API)."""
        creds = cls(environ={})
        creds.fixed = dict(users)
        return creds

    def _reload(self, initial: bool = False) -> None:
        if self.path is None:
            return
        try:
            stat = self.path.stat()
            stamp = (stat.st_mtime, stat.st_size)
            if stamp == self._stamp:
                return
            problems: list[str] = []
            users = parse_credentials(str(self.path), self.path.read_text(encoding="utf-8"),
                                      problems)
            if problems and not users and initial:
                raise CredentialsError(problems[0])
            for problem in problems:
                print(f"warning: {problem}", file=sys.stderr)
        except OSError as e:
            if initial:
                raise CredentialsError(f"{self.path}: cannot read the credentials: "
                                       f"{e.strerror}") from None
            users, stamp = {}, (0.0, -1)  # the file is gone: nobody from it may log in
        except CredentialsError as e:
            if initial:
                raise
            print(f"warning: {e}; nobody from {self.path} may log in until it is fixed",
                  file=sys.stderr)
            users, stamp = {}, (0.0, -2)
        self._from_file, self._stamp = users, stamp

    def users(self) -> dict[str, str]:
        now = time.monotonic()
        if self.path is not None and now - self._checked >= self.check_every_s:
            with self._lock:
                self._checked = now
                self._reload()
        return {**self._from_file, **self.fixed}

    def hash_of(self, user: str) -> str | None:
        return self.users().get(user)


class SessionStore:
    """Sessions and failed logins in one SQLite file that every worker opens."""

    def __init__(self, path: Path, session_hours: float = SESSION_HOURS) -> None:
        self.path = path
        self.lifetime_s = session_hours * 3600
        self._local = threading.local()
        # owner-only before SQLite opens it: its -wal and -shm files (which hold session ids)
        # take the database file's permissions when SQLite creates them
        with contextlib.suppress(OSError):
            os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
            path.chmod(0o600)
        with self._conn() as conn:
            conn.executescript("""
                PRAGMA journal_mode = WAL;
                CREATE TABLE IF NOT EXISTS sessions (
                    id TEXT PRIMARY KEY, user TEXT NOT NULL, created REAL NOT NULL,
                    expires REAL NOT NULL, revoked REAL, credential TEXT);
                CREATE TABLE IF NOT EXISTS login_failures (
                    key TEXT PRIMARY KEY, failures INTEGER NOT NULL, last REAL NOT NULL);
            """)
            columns = {row[1] for row in conn.execute("PRAGMA table_info(sessions)")}
            if "credential" not in columns:  # a sessions file from before: its sessions end
                conn.execute("ALTER TABLE sessions ADD COLUMN credential TEXT")
        for extra in ("-wal", "-shm"):
            with contextlib.suppress(OSError):
                Path(f"{path}{extra}").chmod(0o600)

    @contextlib.contextmanager
    def _conn(self) -> Iterator[sqlite3.Connection]:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=10, isolation_level=None)
            conn.execute("PRAGMA busy_timeout = 10000")
            self._local.conn = conn
        yield conn

    def create(self, user: str, credential: str) -> tuple[str, float]:
        """A new session for `user`, opened with the credential `credential` (its
        `credential_mark`): its id and when it expires (Unix time)."""
        sid = secrets.token_urlsafe(32)
        now = time.time()
        with self._conn() as conn:
            conn.execute("INSERT INTO sessions (id, user, created, expires, revoked, credential) "
                         "VALUES (?, ?, ?, ?, NULL, ?)",
                         (sid, user, now, now + self.lifetime_s, credential))
            conn.execute("DELETE FROM sessions WHERE expires < ?", (now - 86400,))
        return sid, now + self.lifetime_s

    def valid(self, sid: str, user: str, credential: str) -> bool:
        """The session is the user's, unexpired, not revoked, and opened with the credential
        the user has now."""
        with self._conn() as conn:
            row = conn.execute("SELECT 1 FROM sessions WHERE id = ? AND user = ? AND "
                               "revoked IS NULL AND expires > ? AND credential = ?",
                               (sid, user, time.time(), credential)).fetchone()
        return row is not None

    def revoke(self, sid: str) -> None:
        with self._conn() as conn:
            conn.execute("UPDATE sessions SET revoked = ? WHERE id = ?", (time.time(), sid))

    def wait_s(self, keys: list[str]) -> float:
        """How long an attempt for these keys (analyst, address) must still wait; 0 if none."""
        now = time.time()
        with self._conn() as conn:
            rows = conn.execute(
                f"SELECT failures, last FROM login_failures WHERE key IN "
                f"({', '.join('?' * len(keys))})", keys).fetchall()
        wait = 0.0
        for failures, last in rows:
            if now - last > FAILURE_WINDOW_S or failures < FREE_FAILURES:
                continue
            delay = min(2.0 ** (failures - FREE_FAILURES), MAX_DELAY_S)
            wait = max(wait, last + delay - now)
        return wait

    def has_failed(self, key: str) -> bool:
        """Whether `key` has failures in the current window."""
        with self._conn() as conn:
            row = conn.execute("SELECT last FROM login_failures WHERE key = ?",
                               (key,)).fetchone()
        return row is not None and time.time() - row[0] <= FAILURE_WINDOW_S

    def failed(self, keys: list[str]) -> None:
        now = time.time()
        with self._conn() as conn:
            for key in keys:
                conn.execute(
                    "INSERT INTO login_failures VALUES (?, 1, ?) ON CONFLICT(key) DO UPDATE "
                    "SET failures = CASE WHEN ? - last > ? THEN 1 ELSE failures + 1 END, "
                    "last = excluded.last", (key, now, now, FAILURE_WINDOW_S))

    def succeeded(self, key: str) -> None:
        with self._conn() as conn:
            conn.execute("DELETE FROM login_failures WHERE key = ?", (key,))


def check_password(credentials: Credentials, user: str, password: str) -> bool:
    """Whether `user` may log in with `password`; an unknown user costs the same time."""
    hashed = credentials.hash_of(user)
    ok = verify_password(password[:MAX_PASSWORD], hashed or _DECOY)
    return ok and hashed is not None
