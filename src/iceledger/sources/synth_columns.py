"""Column arrays of the synthetic FOIA generator, independent of the file format they go to.

Four kinds cover every cell of the raw ICE layouts: labels from a small fixed set (criminality,
facility names, redaction strings), whole numbers, moments (Excel datetimes or dates) and fixed-width
codes (the anonymized identifiers). Each knows how to become an Arrow array (CSV and Parquet) and
how to keep only some rows (a release only holds what happened before its release date); the xlsx
writer renders them straight to bytes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

EMPTY_CODE = -1


def _mask(empty: np.ndarray | None) -> np.ndarray | None:
    return empty if empty is not None and empty.any() else None


@dataclass(frozen=True)
class Labels:
    """Text from a fixed set: `codes` index `labels`; EMPTY_CODE is an empty cell."""

    codes: np.ndarray
    labels: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.codes)

    def take(self, rows: np.ndarray) -> Labels:
        return Labels(self.codes[rows], self.labels)

    def to_arrow(self) -> pa.Array:
        codes = pa.array(self.codes.astype(np.int32), mask=_mask(self.codes < 0))
        return pa.DictionaryArray.from_arrays(codes, pa.array(self.labels, pa.string()))


@dataclass(frozen=True)
class Numbers:
    """Whole numbers (birth years, threat levels, amounts); `empty` marks empty cells."""

    values: np.ndarray
    empty: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.values)

    def take(self, rows: np.ndarray) -> Numbers:
        return Numbers(self.values[rows], None if self.empty is None else self.empty[rows])

    def to_arrow(self) -> pa.Array:
        return pa.array(self.values.astype(np.int64), mask=_mask(self.empty))


@dataclass(frozen=True)
class Moments:
    """Local date-times in whole seconds since 1970-01-01 (ICE records carry no time zone).

    `date_only` columns are written as dates (Excel serial days, Arrow date32).
    """

    seconds: np.ndarray
    empty: np.ndarray | None = None
    date_only: bool = False

    def __len__(self) -> int:
        return len(self.seconds)

    def take(self, rows: np.ndarray) -> Moments:
        empty = None if self.empty is None else self.empty[rows]
        return Moments(self.seconds[rows], empty, self.date_only)

    def to_arrow(self) -> pa.Array:
        mask = _mask(self.empty)
        if self.date_only:
            seconds = self.seconds if mask is None else np.where(mask, 0, self.seconds)
            days = (seconds // 86_400).astype(np.int32)
            return pa.array(days, pa.date32(), mask=mask)
        return pa.array(self.seconds.astype(np.int64), pa.timestamp("s"), mask=mask)


@dataclass(frozen=True)
class Codes:
    """Fixed-width ASCII text unique to a row or person (identifiers): a numpy `S<width>` array."""

    text: np.ndarray
    empty: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.text)

    def take(self, rows: np.ndarray) -> Codes:
        return Codes(self.text[rows], None if self.empty is None else self.empty[rows])

    def to_arrow(self) -> pa.Array:
        width = self.text.dtype.itemsize
        offsets = np.arange(0, (len(self.text) + 1) * width, width, dtype=np.int32)
        data = pa.py_buffer(np.ascontiguousarray(self.text).view(np.uint8))
        strings = pa.StringArray.from_buffers(len(self.text), pa.py_buffer(offsets), data)
        mask = _mask(self.empty)
        if mask is None:
            return strings
        return pc.if_else(pa.array(mask), pa.scalar(None, pa.string()), strings)


Column = Labels | Numbers | Moments | Codes
