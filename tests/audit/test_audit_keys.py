"""The audit key: from the key file, the embedded default beside SQLite, refused for PostgreSQL."""

from __future__ import annotations

import os
import pwd
import stat
from pathlib import Path

import pytest

from contracts.errors import ConfigurationError
from integration.audit import current_actor, default_key_path, load_audit_key
from integration.settings import Settings


def test_the_key_file_is_read_as_bytes(tmp_path: Path) -> None:
    key_file = tmp_path / "audit.key"
    key_file.write_bytes(b"\x00\xff" * 20)
    settings = Settings(
        database_url="postgresql://mesbridge@db.invalid/mesbridge", audit_key_file=str(key_file)
    )
    assert load_audit_key(settings) == b"\x00\xff" * 20


@pytest.mark.parametrize(
    ("content", "problem"), [(b"x" * 31, "holds 31 bytes"), (None, "cannot read")]
)
def test_a_short_or_missing_key_file_is_a_configuration_error(
    tmp_path: Path, content: bytes | None, problem: str
) -> None:
    key_file = tmp_path / "audit.key"
    if content is not None:
        key_file.write_bytes(content)
    with pytest.raises(ConfigurationError, match=problem) as caught:
        load_audit_key(Settings(audit_key_file=str(key_file)))
    assert str(key_file) in str(caught.value)


def test_postgresql_without_a_key_file_keys_the_trail_on_this_machine(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.chdir(tmp_path)
    settings = Settings(database_url="postgresql://mesbridge:s3cret@db.invalid/mesbridge")
    key = load_audit_key(settings)
    path = tmp_path / "var" / "audit.key"
    assert path.read_bytes() == key
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert "must share one key" in caplog.text
    assert "s3cret" not in caplog.text
    assert load_audit_key(settings) == key


def test_the_embedded_default_creates_a_private_key_beside_the_database(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'var' / 'mesbridge.db'}")
    path = tmp_path / "var" / "audit.key"
    assert default_key_path(settings.database_url) == path

    first = load_audit_key(settings)

    assert len(first) == 32
    assert path.read_bytes() == first
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert "in production set MESBRIDGE_AUDIT_KEY_FILE" in caplog.text
    assert load_audit_key(settings) == first  # created once, then reused


def test_the_actor_is_the_login_of_the_real_user(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("USER", "someone-else")
    monkeypatch.delenv("SUDO_USER", raising=False)
    login = pwd.getpwuid(os.getuid()).pw_name

    assert current_actor() == login

    monkeypatch.setenv("SUDO_USER", "alice")
    assert current_actor() == f"{login} (sudo by alice)"
