"""Reading a secret that a configuration file names by path (the API token, a database
password): node.toml's `[api] token_file` and `database_password_file`, hub.toml's too.

Kept apart from node.identity.passphrase, which reads the keys' passphrase from any of
its three sources and needs NodeConfig; this one is below the configuration modules, so
they can read their own secrets at load time. Every failure is a ConfigError of one line
naming the setting and the file; the secret itself is never in a message.
"""

from __future__ import annotations

from pathlib import Path

from node.errors import ConfigError

# A token or a password is short; a larger file is a wrong path (a key, a log).
MAX_SECRET_BYTES = 4096


def read_secret_file(path: Path, setting: str) -> str:
    """The text of `path`, one trailing newline dropped (`echo` and editors add one).

    `setting` (`api.token_file`, say) starts each message. ConfigError when the file is
    missing, unreadable, not UTF-8 text, larger than a secret is, or empty.
    """
    try:
        with path.open("rb") as file:
            data = file.read(MAX_SECRET_BYTES + 1)
    except OSError as e:
        raise ConfigError(f"{setting}: cannot read {path}: {e.strerror or e}") from None
    if len(data) > MAX_SECRET_BYTES:
        raise ConfigError(f"{setting}: {path} holds more than {MAX_SECRET_BYTES} bytes: no secret")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{setting}: {path} is not UTF-8 text") from None
    text = text.removesuffix("\n").removesuffix("\r")
    if not text:
        raise ConfigError(f"{setting}: {path} is empty")
    return text
