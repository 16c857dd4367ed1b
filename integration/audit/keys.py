"""The audit trail's key, and who is acting.

Key: ``MESBRIDGE_AUDIT_KEY_FILE`` names a file whose bytes, exactly as they
are, are the key material (at least 32 bytes; make one with
``openssl rand -out audit.key 32``). It is read when a command needs it, never
stored in the database and never logged. Without the setting:

- SQLite (one machine, the embedded default): ``audit.key`` beside the
  database file is used, and created with 32 random bytes and mode 0600 the
  first time, with a warning that production must set the key file;
- any other database (PostgreSQL): ``var/audit.key`` under the working
  directory, created the same way, with a louder warning: every instance and
  operator sharing the database must then use the same file, which only
  ``MESBRIDGE_AUDIT_KEY_FILE`` makes sure of. The service still starts with
  the documented two settings (broker and database URL) alone.

Actor: the operating-system account running the command (the login name of
the process's real user id, not ``$USER``, which anyone can set). Under sudo
the invoking user is named too.

Failure modes: a key file that is missing, unreadable or shorter than 32
bytes raises ``ConfigurationError`` naming the file.
"""

from __future__ import annotations

import getpass
import logging
import os
import pwd
import secrets
import stat
from pathlib import Path

from contracts.errors import ConfigurationError
from integration.settings import Settings
from integration.store.engine import normalise_url

from .trail import MIN_KEY_BYTES

__all__ = ["DEFAULT_KEY_NAME", "current_actor", "default_key_path", "load_audit_key"]

log = logging.getLogger("mesbridge.audit")

DEFAULT_KEY_NAME = "audit.key"


def default_key_path(database_url: str) -> Path:
    """Where the key is kept without ``MESBRIDGE_AUDIT_KEY_FILE`` (see the module docstring)."""
    url = normalise_url(database_url)
    if url.get_backend_name() != "sqlite" or not url.database:
        return Path("var") / DEFAULT_KEY_NAME
    database = url.database.removeprefix("file:").split("?", 1)[0]
    return Path(database).parent / DEFAULT_KEY_NAME


def load_audit_key(settings: Settings) -> bytes:
    """The key material for the audit trail, as described in the module docstring."""
    if settings.audit_key_file:
        return _read_key(Path(settings.audit_key_file))
    path = default_key_path(settings.database_url)
    if normalise_url(settings.database_url).get_backend_name() != "sqlite":
        log.warning(
            "MESBRIDGE_AUDIT_KEY_FILE is not set: the audit trail is keyed with %s on this "
            "machine only; instances and operators sharing this database must share one key "
            "(e.g. `openssl rand -out /etc/mesbridge/audit.key 32`, then "
            "MESBRIDGE_AUDIT_KEY_FILE=/etc/mesbridge/audit.key)",
            path,
        )
    if not path.exists():
        _create_key(path)
    return _read_key(path)


def _create_key(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return  # another process created it first: use theirs
    except OSError as error:
        raise ConfigurationError(
            f"cannot create the audit key file {path}: {error.strerror}"
        ) from error
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(secrets.token_bytes(MIN_KEY_BYTES))
        handle.flush()
        os.fsync(handle.fileno())
    log.warning(
        "created the audit key %s; in production set MESBRIDGE_AUDIT_KEY_FILE to a key "
        "kept away from the database",
        path,
    )


def _read_key(path: Path) -> bytes:
    try:
        key = path.read_bytes()
        mode = path.stat().st_mode
    except OSError as error:
        raise ConfigurationError(
            f"cannot read the audit key file {path} (MESBRIDGE_AUDIT_KEY_FILE): {error.strerror}"
        ) from error
    if len(key) < MIN_KEY_BYTES:
        raise ConfigurationError(
            f"the audit key file {path} holds {len(key)} bytes; at least {MIN_KEY_BYTES} are "
            f"needed (e.g. `openssl rand -out {path} 32`)"
        )
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        log.warning("the audit key file %s is readable by others: chmod 600 it", path)
    return key


def current_actor() -> str:
    """The operating-system user running this process, for the ``actor`` of an entry."""
    name = ""
    try:
        name = pwd.getpwuid(os.getuid()).pw_name
    except (KeyError, OSError):
        try:
            name = getpass.getuser()
        except (ImportError, KeyError, OSError):
            name = ""
    if not name:
        name = f"uid:{os.getuid()}"
    invoker = os.environ.get("SUDO_USER", "")
    if invoker and invoker != name:
        return f"{name} (sudo by {invoker})"
    return name
