"""The first line of a text drop: what kind of file it really is, its encoding, and its header row.

A mismatch with the spec is named with its likely cause: a compressed or binary file, a UTF-16 file, another
encoding, another delimiter.
"""

from __future__ import annotations

import codecs
import csv
from pathlib import Path

from nightshift.readers.base import Dialect, DropError

HEAD_BYTES = 1 << 16
_OTHER_DELIMITERS = (",", ";", "\t", "|")
_SIGNATURES: tuple[tuple[bytes, str, str], ...] = (
    (
        b"\x1f\x8b",
        "gzip",
        "format 'csv.gz' reads gzip-compressed CSV: name the file .csv.gz and include 'csv.gz' in {setting}.format",
    ),
    (b"PK\x03\x04", "a ZIP archive (an Excel .xlsx workbook is one)", "export the sheet as CSV"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "an old Excel .xls workbook", "export the sheet as CSV"),
    (
        b"PAR1",
        "a Parquet file",
        "format 'parquet' reads Parquet: name the file .parquet and include 'parquet' in {setting}.format",
    ),
    (b"BZh", "bzip2", "decompress it before it lands"),
    (b"\xfd7zXZ\x00", "xz", "decompress it before it lands"),
    (b"\x28\xb5\x2f\xfd", "zstd", "decompress it before it lands"),
    (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive", "extract it before it lands"),
    (b"%PDF-", "a PDF document", "export the data as CSV"),
)
_BOMS: tuple[tuple[bytes, str], ...] = (
    (codecs.BOM_UTF32_LE, "UTF-32"),
    (codecs.BOM_UTF32_BE, "UTF-32"),
    (codecs.BOM_UTF16_LE, "UTF-16"),
    (codecs.BOM_UTF16_BE, "UTF-16"),
)


def is_utf8(encoding: str) -> bool:
    return codecs.lookup(encoding).name in ("utf-8", "utf-8-sig")


def hex_bytes(data: bytes) -> str:
    return " ".join(f"0x{byte:02x}" for byte in data)


def sniff(head: bytes, label: str, dialect: Dialect) -> None:
    """Raise DropError when the file's first bytes show it is not text in the spec's encoding, saying what it is."""
    expected = f"CSV text in {dialect.encoding} ({dialect.setting}.encoding)"
    for signature, what, advice in _SIGNATURES:
        if head.startswith(signature) and (signature != b"BZh" or head[3:4].isdigit()):
            where = (
                f"byte 0x{signature[1]:02x} at offset 1"
                if signature == b"\x1f\x8b"
                else f"the bytes {hex_bytes(signature[:4])} at offset 0"
            )
            raise DropError(
                f"{label}: {where}: this looks like {what}, not {expected}. Format 'csv' ({dialect.setting}.format) "
                f"reads uncompressed text files; {advice.replace('{setting}', dialect.setting)}"
            )
    for bom, name in _BOMS:
        if head.startswith(bom):
            raise DropError(
                f"{label}: the bytes {hex_bytes(bom)} at offset 0 are a {name} byte-order mark: the file is {name} "
                f"text, not {expected}. Export it as UTF-8 (nightshift reads ASCII-compatible encodings such as "
                "utf-8, latin-1 and cp1252)"
            )
    if head.startswith(codecs.BOM_UTF8) and not is_utf8(dialect.encoding):
        raise DropError(
            f"{label}: the file starts with the UTF-8 byte-order mark (0xef 0xbb 0xbf), but {dialect.setting}.encoding "
            f"is {dialect.encoding!r}: is the file UTF-8? If so, set {dialect.setting}.encoding to utf-8"
        )
    line = first_line(head)
    nul = line.find(b"\x00")
    if nul >= 0:
        sample = line[:64]
        halves = sample[1::2], sample[0::2]
        for zeros, text in (halves, halves[::-1]):
            if len(zeros) >= 2 and zeros.count(0) == len(zeros) and b"\x00" not in text:
                raise DropError(
                    f"{label}: line 1, byte 0x00 at offset {nul}: every other byte is 0x00, so this looks like "
                    f"UTF-16 text without a byte-order mark, not {expected}. Export it as UTF-8"
                )
        raise DropError(
            f"{label}: line 1, byte 0x00 at offset {nul}: a NUL byte in the header: this looks like a binary file, "
            f"not {expected}"
        )
    control = [index for index, byte in enumerate(line) if byte < 0x20 and byte not in (0x09, 0x0C)]
    if len(control) > max(2, len(line) // 10):
        raise DropError(
            f"{label}: line 1, byte 0x{line[control[0]]:02x} at offset {control[0]}: {len(control)} control bytes "
            f"in the first {len(line)}: this looks like a binary file, not {expected}"
        )


def first_line(head: bytes) -> bytes:
    """The bytes of line 1, without its line break."""
    ends = [index for index in (head.find(b"\n"), head.find(b"\r")) if index >= 0]
    return head[: min(ends)] if ends else head


def read_header(path: Path, label: str, dialect: Dialect) -> list[str]:
    """Line 1 of a text drop as column names; DropError naming the likely cause when it is not a CSV header."""
    with path.open("rb") as handle:
        head = handle.read(HEAD_BYTES)
        more = bool(handle.read(1))
    if not head:
        raise DropError(f"{label}: the file is empty; expected a CSV header row and data rows")
    sniff(head, label, dialect)
    line = first_line(head)
    if len(line) == len(head) and more:
        raise DropError(
            f"{label}: line 1 has no line break in its first {HEAD_BYTES} bytes: this does not look like a CSV "
            "header row"
        )
    start = len(codecs.BOM_UTF8) if line.startswith(codecs.BOM_UTF8) else 0
    try:
        text = line[start:].decode(dialect.encoding)
    except UnicodeDecodeError as exc:
        offset = start + int(exc.start)
        raise DropError(
            f"{label}: line 1 (the header), byte 0x{line[offset]:02x} at offset {offset} is not valid "
            f"{dialect.encoding} ({dialect.setting}.encoding).{_encoding_hint(line[start:], dialect)}"
        ) from None
    if not text.strip():
        raise DropError(f"{label}: line 1 is blank; the header row must be the first line of the file")
    try:
        header = next(csv.reader([text], delimiter=dialect.delimiter, quotechar='"', doublequote=True))
    except csv.Error as exc:
        raise DropError(f"{label}: line 1 (the header) is not a readable CSV row: {exc}") from None
    return header


def check_delimiter(header: list[str], expected: list[str], label: str, dialect: Dialect) -> None:
    """A one-column header that another delimiter would split: say so before reporting missing columns."""
    if len(header) != 1 or len(expected) < 2:
        return
    counts = {other: header[0].count(other) for other in _OTHER_DELIMITERS if other != dialect.delimiter}
    best = max(counts, key=lambda other: counts[other])
    if counts[best]:
        shown = header[0] if len(header[0]) <= 80 else header[0][:79] + "…"
        raise DropError(
            f"{label}: the header has one column ({shown!r}): is the delimiter {best!r}? {dialect.setting}.delimiter "
            f"is {dialect.delimiter!r}; set it to {best!r} if the file is written that way. Expected the header: "
            f"{dialect.delimiter.join(expected)}"
        )


def _encoding_hint(data: bytes, dialect: Dialect) -> str:
    for other, name in (("utf-8", "UTF-8"), ("cp1252", "Windows-1252 (cp1252)")):
        if codecs.lookup(other).name == codecs.lookup(dialect.encoding).name:
            continue
        try:
            data.decode(other)
        except UnicodeDecodeError:
            continue
        return f" Is the file {name}? If so, set {dialect.setting}.encoding to {other}"
    return ""
