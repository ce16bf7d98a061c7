"""Column arrays of the synthetic FOIA generator, independent of the file format they go to.

Four kinds cover every cell of the raw ICE layouts: labels from a small fixed set (criminality,
facility names, redaction strings), whole numbers, moments (Excel datetimes or dates) and fixed-width
codes (the anonymized identifiers). Each knows how to become an Arrow array (CSV and Parquet) and
how to keep only some rows (a release only holds what happened before its release date); the xlsx
writer renders them straight to bytes.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

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
class _Cells:
    """Values with an optional mask of empty cells."""

    values: np.ndarray
    empty: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.values)

    def take(self, rows: np.ndarray):
        empty = None if self.empty is None else self.empty[rows]
        return replace(self, values=self.values[rows], empty=empty)


@dataclass(frozen=True)
class Numbers(_Cells):
    """Whole numbers (birth years, threat levels, amounts)."""

    def to_arrow(self) -> pa.Array:
        return pa.array(self.values.astype(np.int64), mask=_mask(self.empty))


@dataclass(frozen=True)
class Moments(_Cells):
    """Local date-times in whole seconds since 1970-01-01 (ICE records carry no time zone).

    `date_only` columns are written as dates (Excel serial days, Arrow date32).
    """

    date_only: bool = False

    def to_arrow(self) -> pa.Array:
        mask = _mask(self.empty)
        seconds = self.values if mask is None else np.where(mask, 0, self.values)
        if self.date_only:
            return pa.array((seconds // 86_400).astype(np.int32), pa.date32(), mask=mask)
        return pa.array(seconds.astype(np.int64), pa.timestamp("s"), mask=mask)


@dataclass(frozen=True)
class Codes(_Cells):
    """Fixed-width ASCII text unique to a row or person (identifiers): a numpy `S<width>` array."""

    def to_arrow(self) -> pa.Array:
        width = self.values.dtype.itemsize
        offsets = np.arange(0, (len(self.values) + 1) * width, width, dtype=np.int32)
        data = pa.py_buffer(np.ascontiguousarray(self.values).view(np.uint8))
        strings = pa.StringArray.from_buffers(len(self.values), pa.py_buffer(offsets), data)
        mask = _mask(self.empty)
        if mask is None:
            return strings
        return pc.if_else(pa.array(mask), pa.scalar(None, pa.string()), strings)


Column = Labels | Numbers | Moments | Codes
