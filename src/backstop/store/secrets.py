"""API secrets at rest: sealed with Fernet (AES-128-CBC with HMAC-SHA256, from
``cryptography``) under a key that is not in the database.

The key comes from ``BACKSTOP_SECRET_KEY`` (a urlsafe-base64 Fernet key) or from a file
(``secret.key`` in the data dir, mode 0600), created with a fresh random key the first time.
An ``api_key`` log record keeps ``uid`` and ``api_key`` in clear (the key is an identifier)
and the secret key and passphrase only as a Fernet token.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

from backstop.store.log import FILE_MODE

KEY_ENV = "BACKSTOP_SECRET_KEY"


class SecretsError(ValueError):
    """The secrets key is missing, malformed, or not the one the records were sealed with."""


def load_key(path: Path) -> Fernet:
    """``BACKSTOP_SECRET_KEY``, else the key in ``path`` (created, mode 0600, if absent)."""
    text = os.environ.get(KEY_ENV, "").strip()
    if not text:
        if not path.exists():
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
            with os.fdopen(fd, "wb") as out:
                out.write(Fernet.generate_key() + b"\n")
        os.chmod(path, FILE_MODE)
        text = path.read_text().strip()
    try:
        return Fernet(text.encode())
    except ValueError as exc:
        raise SecretsError(f"secrets key ({KEY_ENV} or {path}) is not a Fernet key") from exc


def seal(fernet: Fernet, fields: dict[str, str]) -> str:
    return fernet.encrypt(json.dumps(fields, sort_keys=True).encode()).decode()


def unseal(fernet: Fernet, token: str) -> dict[str, str]:
    try:
        return json.loads(fernet.decrypt(token.encode()))
    except InvalidToken as exc:
        raise SecretsError("cannot decrypt the stored API secrets: wrong secrets key "
                           f"({KEY_ENV} or secret.key in the data dir)") from exc
