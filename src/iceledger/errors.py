"""Errors a user can act on.

Every error the CLI shows is one line that names where the problem is (file, sheet, cell or row)
and what is wrong, so that the user can fix the input and run again. Anything else is a bug.
"""

from __future__ import annotations

from dataclasses import dataclass


class IceledgerError(Exception):
    """A problem with the user's input or environment, shown as one line without a traceback."""


@dataclass(frozen=True)
class Location:
    """Where in a source file something was found: file, and where known sheet, cell or row."""

    file: str
    sheet: str | None = None
    cell: str | None = None
    row: int | None = None

    def __str__(self) -> str:
        parts = [self.file]
        if self.sheet is not None:
            parts.append(f"sheet {self.sheet.strip()!r}")
        if self.cell is not None:
            parts.append(f"cell {self.cell}")
        if self.row is not None:
            parts.append(f"row {self.row}")
        return ", ".join(parts)


class SourceError(IceledgerError):
    """Input that cannot be read as expected, with the place it was found."""

    def __init__(self, location: Location, problem: str):
        self.location = location
        self.problem = problem
        super().__init__(f"{location}: {problem}")
