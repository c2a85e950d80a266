"""Where Lamina reads the secrets that SourceAccessConfigurations name (BASIC_AUTH and the like).

Lamina has no Secrets Manager. A secret ARN `arn:aws:secretsmanager:REGION:ACCOUNT:secret:NAME`
is read, in this order, from the environment variable `LAMINA_SECRET_<NAME>` (NAME upper-cased,
every character other than a letter or digit turned into `_`) and from the file
`<data dir>/secrets/NAME` (or `NAME.json`). Either holds the secret string as Secrets Manager
would: for broker credentials a JSON object {"username": "...", "password": "..."}. The mapping
shows only the ARN, never the secret.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from pathlib import Path

from lamina.sources.base import SourceUnavailable

_SECRET_ARN = re.compile(
    r"arn:aws[a-zA-Z-]*:secretsmanager:[a-z0-9-]*:\d{0,12}:secret:(?P<name>.+)"
)
_SAFE_NAME = re.compile(r"[A-Za-z0-9/_+=.@-]{1,512}")


def secret_name(uri: str) -> str | None:
    m = _SECRET_ARN.fullmatch(uri)
    return m["name"] if m else None


def env_name(name: str) -> str:
    return "LAMINA_SECRET_" + re.sub(r"[^A-Za-z0-9]", "_", name).upper()


class FileSecrets:
    """The Secrets of base.py: environment variables, then files under `<data dir>/secrets/`."""

    def __init__(self, directory: Path, environ: Mapping[str, str] | None = None) -> None:
        self.directory = directory
        self.environ = os.environ if environ is None else environ

    def read(self, uri: str) -> dict[str, str]:
        name = secret_name(uri)
        if name is None or not _SAFE_NAME.fullmatch(name) or ".." in name.split("/"):
            raise SourceUnavailable(
                f"Invalid secret ARN {uri}: Lamina reads arn:aws:secretsmanager:REGION:ACCOUNT:"
                "secret:NAME from LAMINA_SECRET_<NAME> or <data dir>/secrets/NAME",
                permanent=True,
            )
        text = self.environ.get(env_name(name))
        if text is None:
            for candidate in (self.directory / name, self.directory / f"{name}.json"):
                if candidate.is_file():
                    text = candidate.read_text()
                    break
        if text is None:
            raise SourceUnavailable(
                f"Secrets Manager secret {uri} was not found (looked for {env_name(name)} and "
                f"{self.directory / name})",
                permanent=True,
            )
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise SourceUnavailable(
                f"Unable to parse the secret {uri}: it must be a JSON object", permanent=True
            ) from exc
        if not isinstance(data, dict):
            raise SourceUnavailable(
                f"Unable to parse the secret {uri}: it must be a JSON object", permanent=True
            )
        return {str(k): str(v) for k, v in data.items()}
