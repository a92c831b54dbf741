"""Institution codes: ``[A-Z0-9_-]{1,32}``.

A code is part of every institution-scoped hash (``borrower|<code>|<key>``,
``loan|<code>|<key>``, :mod:`creditdb.anonymise`). A code holding the scope separator
``|`` would let bank ``X`` compute bank ``X|Y``'s hashes (issue 17, item 7), so codes are
upper-case letters, digits, ``_`` and ``-`` only. The same rule is a CHECK constraint on
``institution.code`` (migration 0011) and is enforced again by the server's hashing
function (``creditdb/sql/rls.sql``).
"""

from __future__ import annotations

import re

CODE_PATTERN = r"[A-Z0-9_-]{1,32}"
_CODE = re.compile(CODE_PATTERN)
#: the same rule in each dialect's CHECK constraint
CODE_CHECK = {
    "postgresql": "code ~ '^[A-Z0-9_-]{1,32}$'",
    "sqlite": "length(code) BETWEEN 1 AND 32 AND code NOT GLOB '*[^A-Z0-9_-]*'",
}


class InvalidCode(ValueError):
    """Not a valid institution code (the message says which rule)."""


def check_code(code: str) -> str:
    """Return ``code`` unchanged if it is a valid institution code, else raise :class:`InvalidCode`."""
    if not isinstance(code, str) or not _CODE.fullmatch(code):
        raise InvalidCode(f"institution code {code!r} is invalid: use 1 to 32 characters A-Z, 0-9, '_' or '-' "
                          "(upper case; no '|', which separates hash scopes)")
    return code


__all__ = ["CODE_CHECK", "CODE_PATTERN", "InvalidCode", "check_code"]
