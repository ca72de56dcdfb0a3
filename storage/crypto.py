"""Encryption at rest for residents' phone numbers and e-mail addresses: Fernet under the deployment's
keys, newest first. The newest key encrypts; every listed key decrypts.

A stored value reads ``fernet:<key id>:<Fernet token>``; the key id (8 hex digits of the key's SHA-256)
says which key a value needs, so a missing key is named instead of guessed at. A value without the
prefix is plaintext written before encryption (``storage.reencryption`` encrypts it once).

The keys come from DATA_ENCRYPTION_KEYS, or on the embedded default (a SQLite file) from a key file
beside the database, made on first start. A process installs its cipher once, with :func:`setup`,
before it reads or writes a contact; the column types in ``storage.models`` use it.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken
from sqlalchemy.engine import make_url

log = logging.getLogger(__name__)

KEYS_VARIABLE = "DATA_ENCRYPTION_KEYS"
PREFIX = "fernet:"
NEW_KEY_ADVICE = (
    "make one with `initiatiefbot privacy rotate-key --new-key` (or: python -c "
    "'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())')"
)


class KeySetupError(Exception):
    """The keys cannot be set up: not configured, unreadable, or not Fernet keys; one line for people."""


class MissingKeyError(Exception):
    """A stored value needs a key this process does not have (or its token is damaged)."""


def key_id(key: str) -> str:
    """The key's public name: 8 hex digits of its SHA-256, safe to print and to store."""
    return hashlib.sha256(key.strip().encode()).hexdigest()[:8]


def check_keys(keys: Sequence[str], source: str) -> tuple[str, ...]:
    """The keys, stripped and checked to be distinct Fernet keys; ``source`` names where they came from
    in the error (the key itself is never shown)."""
    checked: list[str] = []
    for number, raw in enumerate(keys, start=1):
        key = raw.strip()
        try:
            Fernet(key.encode())
        except (ValueError, TypeError):
            raise KeySetupError(
                f"{source}: key {number} is not a Fernet key (32 random bytes, url-safe base64); "
                + NEW_KEY_ADVICE
            ) from None
        if key in checked:
            raise KeySetupError(f"{source}: key {number} repeats key {checked.index(key) + 1}")
        checked.append(key)
    return tuple(checked)


@dataclass(frozen=True)
class Cipher:
    """Fernet under a deployment's keys, newest first: the first encrypts, all decrypt."""

    keys: tuple[tuple[str, Fernet], ...]

    @classmethod
    def from_keys(cls, keys: Sequence[str]) -> Cipher:
        if not keys:
            raise KeySetupError("no key given")
        return cls(tuple((key_id(key), Fernet(key.strip().encode())) for key in keys))

    @property
    def current_id(self) -> str:
        """The id of the key that encrypts."""
        return self.keys[0][0]

    @property
    def current_prefix(self) -> str:
        """How a value encrypted under the newest key starts."""
        return f"{PREFIX}{self.current_id}:"

    def encrypt(self, plain: str) -> str:
        """``plain`` as stored: encrypted under the newest key."""
        kid, fernet = self.keys[0]
        return f"{PREFIX}{kid}:{fernet.encrypt(plain.encode()).decode()}"

    def decrypt(self, stored: str) -> str:
        """The plaintext of a stored value; a value that is not ours is plaintext already."""
        if not is_encrypted(stored):
            return stored
        kid, _, token = stored[len(PREFIX) :].partition(":")
        for known, fernet in self.keys:
            if known == kid:
                try:
                    return fernet.decrypt(token.encode()).decode()
                except InvalidToken:
                    raise MissingKeyError(
                        f"a contact detail under key {kid} does not decrypt: the value is damaged, or "
                        f"the key with id {kid} in {KEYS_VARIABLE} (or the key file) is not the one "
                        f"that encrypted it"
                    ) from None
        known_ids = ", ".join(k for k, _ in self.keys)
        raise MissingKeyError(
            f"a contact detail is encrypted with key {kid}, which is not among this process's keys "
            f"({known_ids}): put that key back in {KEYS_VARIABLE} (or the key file), after the new one"
        )

    def is_current(self, stored: str) -> bool:
        """Whether a stored value is encrypted under the newest key (nothing left to rotate)."""
        return stored.startswith(self.current_prefix)

    def reencrypt(self, stored: str) -> str:
        """A stored value (plaintext or under any known key) encrypted under the newest key."""
        return stored if self.is_current(stored) else self.encrypt(self.decrypt(stored))


def is_encrypted(stored: str) -> bool:
    """Whether a stored value is one of our tokens (else: plaintext from before encryption)."""
    return stored.startswith(PREFIX)


# The process's cipher. A process serves one deployment, and the column types that use it get nothing
# but the value and the dialect; :func:`setup` installs it once at start-up.
_installed: Cipher | None = None


def install(cipher: Cipher | None) -> None:
    """Make ``cipher`` the process's cipher (None: none, so any contact read or write fails)."""
    global _installed
    _installed = cipher


def cipher() -> Cipher:
    """The process's cipher; fails clearly when :func:`setup` was not called."""
    if _installed is None:
        raise KeySetupError(
            "contact encryption is not set up: the process must call storage.crypto.setup first"
        )
    return _installed


@contextlib.contextmanager
def using(keys: Sequence[str]) -> Iterator[Cipher]:
    """Within the block, the process's cipher has ``keys`` (tests, tools); the previous one comes back."""
    before = _installed
    chosen = Cipher.from_keys(check_keys(keys, "keys"))
    install(chosen)
    try:
        yield chosen
    finally:
        install(before)


def key_file_for(database_url: str) -> Path | None:
    """The key file beside a SQLite database file (``<database>.key``); None for PostgreSQL and for an
    in-memory SQLite database."""
    url = make_url(database_url)
    database = url.database or ""
    if url.get_backend_name() != "sqlite" or database in ("", ":memory:") or "mode=memory" in database:
        return None
    if url.query.get("mode") == "memory":
        return None
    path = Path(database.removeprefix("file:"))
    return path.with_name(path.name + ".key")


def read_key_file(path: Path) -> tuple[str, ...]:
    """The keys in a key file, newest first: one a line; blank lines and ``#`` comments are skipped."""
    try:
        text = path.read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError) as error:
        raise KeySetupError(f"cannot read the key file {path}: {error}") from None
    keys = [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]
    if not keys:
        raise KeySetupError(f"the key file {path} holds no key; " + NEW_KEY_ADVICE)
    if os.name == "posix" and path.stat().st_mode & 0o077:
        log.warning("the key file %s can be read by others: chmod 600 it", path)
    return check_keys(keys, str(path))


KEY_FILE_HEADER = (
    "# Keys for the residents' phone numbers and e-mail addresses (initiatiefbot), newest first.\n"
    "# Without them those cannot be read: back this file up with the database, and apart from it.\n"
)


def create_key_file(path: Path) -> bool:
    """Write a key file with one fresh key, readable by its owner only; False when one exists already
    (another process made it first)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w", encoding="ascii") as file:
        file.write(KEY_FILE_HEADER + new_key() + "\n")
        file.flush()
        os.fsync(file.fileno())
    return True


def prepend_to_key_file(path: Path, key: str) -> None:
    """Put ``key`` first in an existing key file (it becomes the key that encrypts)."""
    keys = read_key_file(path)
    check_keys((key, *keys), str(path))
    temp = path.with_name(path.name + ".new")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as file:
        file.write(KEY_FILE_HEADER + "\n".join((key, *keys)) + "\n")
        file.flush()
        os.fsync(file.fileno())
    os.replace(temp, path)


def new_key() -> str:
    """A fresh Fernet key."""
    return Fernet.generate_key().decode()


def resolve_keys(configured: Sequence[str], database_url: str) -> tuple[str, ...]:
    """The deployment's keys: DATA_ENCRYPTION_KEYS when set; else the key file beside the SQLite file
    (made, mode 0600, when absent); a fresh key for an in-memory SQLite database. PostgreSQL without
    the variable is refused."""
    if configured:
        return check_keys(configured, KEYS_VARIABLE)
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite":
        raise KeySetupError(
            f"{KEYS_VARIABLE} is not set: on PostgreSQL the bot needs a key to encrypt phone numbers and "
            f"e-mail addresses; " + NEW_KEY_ADVICE
        )
    path = key_file_for(database_url)
    if path is None:
        return (new_key(),)  # an in-memory database dies with the process, and its key with it
    if create_key_file(path):
        log.warning(
            "made a new key for contact details in %s: back it up with the database, and apart from it",
            path,
        )
    return read_key_file(path)


def setup(configured: Sequence[str], database_url: str) -> Cipher:
    """Install the process's cipher from DATA_ENCRYPTION_KEYS (``configured``) or the key file; raises
    KeySetupError with one line to show when that cannot be done."""
    chosen = Cipher.from_keys(resolve_keys(configured, database_url))
    install(chosen)
    return chosen
