"""The text encoding of a CSV file: declared (``--encoding``), a byte-order mark, valid
UTF-8, or detected by charset-normalizer, which names its guess and its confidence.

A detection is never silent: the guess and its confidence go into the submission's
report, and a guess below :data:`MIN_CONFIDENCE` rejects the file with a request to
declare the encoding.
"""

from __future__ import annotations

import codecs
from dataclasses import dataclass
from pathlib import Path

#: bytes handed to the detector (the start of the file; a few MB is plenty and keeps it fast)
SAMPLE_BYTES = 4 << 20
#: below this the guess is not used: the file is rejected and the message asks for --encoding
MIN_CONFIDENCE = 0.5

_BOMS = ((codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))


@dataclass(frozen=True)
class Encoding:
    """``name``: a Python codec name; ``how``: declared | bom | utf-8 | detected; ``confidence`` 0-1."""

    name: str
    how: str
    confidence: float = 1.0
    bom: int = 0  # bytes of byte-order mark at the start

    def as_dict(self) -> dict:
        return {"encoding": self.name, "how": self.how, "confidence": round(self.confidence, 3)}


def from_bom(head: bytes) -> Encoding | None:
    for bom, name in _BOMS:
        if head.startswith(bom):
            return Encoding(name, "bom", 1.0, len(bom))
    return None


#: the code page Windows (hence Excel) writes in each member country: preferred when it decodes the file
COUNTRY_CODE_PAGES = {
    "JP": "cp932", "TH": "cp874", "VN": "cp1258", "KR": "cp949", "CN": "gbk", "TW": "cp950", "HK": "cp950",
    "PL": "cp1250", "CZ": "cp1250", "HU": "cp1250", "RU": "cp1251", "UA": "cp1251", "TR": "cp1254",
    "GR": "cp1253", "IL": "cp1255", "SA": "cp1256", "AE": "cp1256", "LT": "cp1257", "LV": "cp1257",
}


def detect(path: Path, country: str | None = None) -> Encoding | None:
    """The file's encoding as charset-normalizer sees it (None when it finds no text encoding).

    A table of codes and numbers has few non-ASCII bytes, and several code pages decode
    them without "chaos": the code page of the submitting institution's ``country`` is
    preferred when it decodes the sample as cleanly as the best guess, and otherwise the
    confidence is shared among the equally clean guesses that read the bytes differently.
    """
    from charset_normalizer import from_bytes

    with Path(path).open("rb") as fh:
        sample = fh.read(SAMPLE_BYTES)
    matches = list(from_bytes(sample))
    if not matches:
        return None
    best = min(matches, key=lambda m: m.chaos)
    local = COUNTRY_CODE_PAGES.get((country or "").upper(), "cp1252")
    try:
        sample.decode(local)
        own = from_bytes(sample, cp_isolation=[local]).best()
    except (UnicodeDecodeError, LookupError):
        own = None
    if own is not None and own.chaos <= best.chaos + 0.05:
        return Encoding(codecs.lookup(local).name, "detected", max(0.0, 1.0 - float(own.chaos)))
    text = str(best)
    rivals = {str(m) for m in matches if m.chaos <= best.chaos + 0.01 and str(m) != text}
    confidence = max(0.0, 1.0 - float(best.chaos)) / (1 + len(rivals))
    return Encoding(_superset(codecs.lookup(best.encoding).name), "detected", confidence)


def _superset(name: str) -> str:
    """The code page Windows really writes for a detected legacy subset (Excel saves CP932, not JIS X 0208)."""
    return {"shift_jis": "cp932", "latin-1": "cp1252", "iso8859-1": "cp1252", "tis-620": "cp874",
            "iso8859-11": "cp874", "euc_jp": "euc_jp"}.get(name, name)


def declared(name: str) -> Encoding:
    enc = codecs.lookup(name).name
    return Encoding(enc, "declared", 1.0)
