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


def detect(path: Path) -> Encoding | None:
    """charset-normalizer's best guess for the file (None when it finds no text encoding)."""
    from charset_normalizer import from_bytes

    with Path(path).open("rb") as fh:
        sample = fh.read(SAMPLE_BYTES)
    best = from_bytes(sample).best()
    if best is None:
        return None
    # chaos 0 is clean text; coherence tells how language-like the decoded text is. Tables
    # of codes and numbers have little language, so the confidence is mostly 1 - chaos.
    confidence = max(0.0, 1.0 - float(best.chaos))
    name = codecs.lookup(best.encoding).name
    return Encoding(_superset(name), "detected", confidence)


def _superset(name: str) -> str:
    """The code page Windows really writes for a detected legacy subset (Excel saves CP932, not JIS X 0208)."""
    return {"shift_jis": "cp932", "latin-1": "cp1252", "iso8859-1": "cp1252", "tis-620": "cp874",
            "iso8859-11": "cp874", "euc_jp": "euc_jp"}.get(name, name)


def declared(name: str) -> Encoding:
    enc = codecs.lookup(name).name
    return Encoding(enc, "declared", 1.0)
