"""A bank's own column names and codes, mapped to the data dictionary.

Header matching ignores case, spaces and punctuation (``Borrower Key``, ``BORROWER_KEY``
and ``borrower-key`` are ``borrower_key``). A *source profile* - a mapping file given with
``--mapping`` or stored with the institution (``creditdb institution profile``) - adds
the bank's own names, its codes (its industry codes, ``Yen`` -> ``JPY``), and how its
files write numbers and dates, so a monthly export needs no editing. Profile files are
TOML (or JSON with the same keys)::

    encoding = "cp932"          # optional; detected when absent
    delimiter = ","             # optional; detected from the header when absent
    sheet = "Statements"        # optional, .xlsx only; the first sheet when absent

    [columns]                   # the bank's header -> dictionary column
    "Kunden-Nr" = "borrower_key"
    "Branche" = "industry"

    [values.industry]           # the bank's code -> dictionary code, per column
    "01" = "A"
    [values.currency]
    "Yen" = "JPY"

    [formats]
    decimal = ","               # decimal mark
    thousands = "."             # grouping mark (default: the other of , and .)
    date_format = "%d.%m.%Y"    # strftime pattern; unambiguous forms are read without it
    missing = ["n/a", "-"]      # tokens that mean no value
"""

from __future__ import annotations

import difflib
import json
import re
import tomllib
import unicodedata
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from pipelines.local_formats import DEFAULT_MISSING, LocalFormats

_KEYS = {"encoding", "delimiter", "sheet", "columns", "values", "formats"}
_FORMAT_KEYS = {"decimal", "thousands", "date_format", "missing"}
DELIMITERS = {",": ",", ";": ";", "\t": "\t", "tab": "\t", "|": "|"}


class ProfileError(ValueError):
    """A mapping file or profile that cannot be used; the message names the key."""


@dataclass(frozen=True)
class SourceProfile:
    """How one institution's files are written (see the module docstring)."""

    columns: dict[str, str] = field(default_factory=dict)
    values: dict[str, dict[str, str]] = field(default_factory=dict)
    formats: LocalFormats | None = None  # None: decimal mark from the delimiter, defaults otherwise
    encoding: str | None = None
    delimiter: str | None = None
    sheet: str | None = None

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"columns": dict(self.columns), "values": {k: dict(v) for k, v in self.values.items()}}
        if self.formats is not None:
            out["formats"] = self.formats.as_dict()
        for k in ("encoding", "delimiter", "sheet"):
            if getattr(self, k) is not None:
                out[k] = getattr(self, k)
        return out

    def with_options(self, **options: Any) -> SourceProfile:
        """This profile with the command line's options (not None) taking precedence."""
        fmt = {k: options.pop(k) for k in list(options) if k in _FORMAT_KEYS and options[k] is not None}
        changes = {k: v for k, v in options.items() if v is not None}
        if fmt:
            base = self.formats.as_dict() if self.formats else {}
            changes["formats"] = _formats({**base, **fmt}, "command line")
        if "delimiter" in changes:
            changes["delimiter"] = _delimiter(changes["delimiter"], "command line")
        if "encoding" in changes:
            changes["encoding"] = check_encoding_name(changes["encoding"])
        return replace(self, **changes) if changes else self


def profile_from_dict(data: dict[str, Any], source: str = "profile") -> SourceProfile:
    """Check and build a profile from parsed TOML/JSON; ``source`` names it in errors."""
    if not isinstance(data, dict):
        raise ProfileError(f"{source}: must be a table of settings")
    unknown = set(data) - _KEYS
    if unknown:
        raise ProfileError(f"{source}: unknown key(s) {', '.join(sorted(unknown))}; known: {', '.join(sorted(_KEYS))}")
    columns = data.get("columns", {})
    if not isinstance(columns, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in columns.items()):
        raise ProfileError(f"{source}: [columns] must map the bank's column names to dictionary column names")
    values = data.get("values", {})
    if not isinstance(values, dict) or not all(
            isinstance(m, dict) and all(isinstance(a, str | int) and isinstance(b, str) for a, b in m.items())
            for m in values.values()):
        raise ProfileError(f"{source}: [values.COLUMN] must map the bank's codes to dictionary codes")
    formats = _formats(data["formats"], source) if "formats" in data else None
    delimiter = _delimiter(data["delimiter"], source) if "delimiter" in data else None
    encoding = data.get("encoding")
    if encoding is not None:
        encoding = check_encoding_name(encoding, source)
    return SourceProfile(columns=dict(columns), values={normalise(k): {str(a).strip(): b for a, b in m.items()}
                                                          for k, m in values.items()},
                         formats=formats, encoding=encoding, delimiter=delimiter, sheet=data.get("sheet"))


def load_profile(path: Path | str) -> SourceProfile:
    """Read a mapping file (``.toml`` or ``.json``)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise ProfileError(f"mapping file {path}: {exc.strerror or exc}") from None
    try:
        data = json.loads(text) if path.suffix.lower() == ".json" else tomllib.loads(text)
    except (json.JSONDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ProfileError(f"mapping file {path}: {exc}") from None
    return profile_from_dict(data, f"mapping file {path}")


def check_encoding_name(name: str, source: str = "--encoding") -> str:
    import codecs

    try:
        return codecs.lookup(str(name)).name
    except LookupError:
        raise ProfileError(f"{source}: unknown encoding {name!r} (e.g. utf-8, utf-16, cp932, cp1252, cp874, "
                           "cp1258)") from None


def _formats(data: Any, source: str) -> LocalFormats:
    if not isinstance(data, dict) or set(data) - _FORMAT_KEYS:
        raise ProfileError(f"{source}: [formats] takes {', '.join(sorted(_FORMAT_KEYS))}")
    missing = data.get("missing")
    try:
        return LocalFormats(decimal=data.get("decimal"), thousands=data.get("thousands"),
                            date_format=data.get("date_format"),
                            missing=tuple(missing) if missing is not None else DEFAULT_MISSING)
    except ValueError as exc:
        raise ProfileError(f"{source}: {exc}") from None


def _delimiter(value: str, source: str) -> str:
    d = DELIMITERS.get(value if value in DELIMITERS else str(value).lower())
    if d is None:
        raise ProfileError(f"{source}: delimiter must be one of , ; tab | (got {value!r})")
    return d


def normalise(name: str) -> str:
    """A header for matching: NFKC, lower case, letters and digits only (``Borrower Key`` -> ``borrowerkey``)."""
    text = unicodedata.normalize("NFKC", str(name)).casefold()
    return re.sub(r"[\W_]+", "", text)


@dataclass
class HeaderMap:
    """How a file's header maps onto the dictionary columns of one kind.

    ``names``: per header position, the dictionary name, the header itself (unknown
    columns) or None (blank header cells, ignored). ``suggestions``: unknown header ->
    the dictionary column it resembles.
    """

    names: list[str | None]
    unknown: list[str]
    suggestions: dict[str, str]
    renamed: dict[str, str]
    clashes: list[tuple[str, str, str]]  # (first header, second header, dictionary column)


def map_header(header: list[str], dictionary: list[str], profile: SourceProfile | None = None) -> HeaderMap:
    """Match ``header`` to ``dictionary`` names: the profile's names first, then normalised equality."""
    by_norm = {normalise(n): n for n in dictionary}
    explicit = {normalise(k): v for k, v in (profile.columns if profile else {}).items()}
    names: list[str | None] = []
    taken: dict[str, str] = {}
    unknown: list[str] = []
    renamed: dict[str, str] = {}
    clashes: list[tuple[str, str, str]] = []
    for h in header:
        if not str(h).strip():
            names.append(None)
            continue
        norm = normalise(h)
        target = explicit.get(norm)
        if target is not None and target not in dictionary:
            target = by_norm.get(normalise(target))
        if target is None:
            target = by_norm.get(norm)
        if target is None:
            names.append(h)
            unknown.append(h)
            continue
        if target in taken:
            clashes.append((taken[target], h, target))
        taken[target] = h
        if h != target:
            renamed[h] = target
        names.append(target)
    free = {normalise(n): n for n in dictionary if n not in taken}
    suggestions = {}
    for h in unknown:
        close = difflib.get_close_matches(normalise(h), list(free), n=1, cutoff=0.7)
        if close:
            suggestions[h] = free[close[0]]
    return HeaderMap(names=names, unknown=unknown, suggestions=suggestions, renamed=renamed, clashes=clashes)
