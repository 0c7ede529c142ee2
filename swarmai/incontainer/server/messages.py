"""Error text fit for a client: one line, short, without internal addresses.

Model and registry errors can be long (tracebacks flattened into messages,
pandas dumps) and can name internal URLs (the MLflow server, the S3 store).
Clients get this version; the log keeps the whole error.
"""

from __future__ import annotations

import re

# URLs, and what urllib3/requests print of one: host='mlflow', "with url: /api/...".
_ADDRESSES = (
    (re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s'\"()]+"), "<url>"),
    (re.compile(r"host='[^']*'"), "host=<host>"),
    (re.compile(r"with url: [^\s()]+"), "with url: <path>"),
)


def public_reason(error: BaseException, limit: int = 200) -> str:
    """``error`` in one line of at most ``limit`` characters, addresses blanked."""
    text = " ".join(str(error).split()) or type(error).__name__
    for pattern, replacement in _ADDRESSES:
        text = pattern.sub(replacement, text)
    if len(text) > limit:
        text = text[: limit - 3] + "..."
    return text
