"""The file formats an export can be written in: CSV for people and spreadsheets, JSON Lines
for machines (SIEM and BI imports). Declared once: the form's list, the command line's choices,
the file name's suffix and the manifest's ``file_format`` come from here."""

from __future__ import annotations

from enum import StrEnum


class FileFormat(StrEnum):
    CSV = "csv"
    JSONL = "jsonl"

    @property
    def suffix(self) -> str:
        return f".{self.value}"

    @property
    def label(self) -> str:
        return _LABELS[self]

    @classmethod
    def of_manifest(cls, value: object) -> FileFormat:
        """The format a manifest records; manifests written before JSON Lines are CSV."""
        return cls(str(value)) if value is not None else cls.CSV


_LABELS = {FileFormat.CSV: "CSV", FileFormat.JSONL: "JSON Lines"}
