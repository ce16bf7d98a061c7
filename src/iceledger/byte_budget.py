"""A least-recently-used store bounded by bytes, not entries.

Query results, computed metrics and rendered bodies differ in size by orders of magnitude (a
national total and a breakdown by facility and day): a budget in entries would let a client
asking for many large distinct queries grow the process without bound.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

Value = TypeVar("Value")


class ByteBudgetLRU(Generic[Value]):
    """Values up to `max_bytes` in total as `size_of` measures them; least recently used go
    first. Not thread-safe: callers that share one across threads hold their own lock."""

    def __init__(self, max_bytes: int, size_of: Callable[[Value], int]):
        self.max_bytes = max_bytes
        self.bytes = 0
        self._size_of = size_of
        self._values: OrderedDict[Hashable, Value] = OrderedDict()

    def __contains__(self, key: Hashable) -> bool:
        return key in self._values

    def get(self, key: Hashable) -> Value | None:
        value = self._values.get(key)
        if value is not None:
            self._values.move_to_end(key)
        return value

    def clear(self) -> None:
        self._values.clear()
        self.bytes = 0

    def put(self, key: Hashable, value: Value) -> None:
        """Keep `value` unless it is already kept or alone exceeds the budget."""
        size = self._size_of(value)
        if key in self._values or size > self.max_bytes:
            return
        self._values[key] = value
        self.bytes += size
        while self.bytes > self.max_bytes:
            _, dropped = self._values.popitem(last=False)
            self.bytes -= self._size_of(dropped)
