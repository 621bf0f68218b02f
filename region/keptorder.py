"""Items kept in the order of their keys, re-placed one at a time as they change.

Why (issue 19): the province snapshot lists every centre row (and every warning and late group)
in a fixed order; sorting 3,321 rows twice on every refresh cost about 10 ms although a refresh
changes a few hundred of them. :class:`KeptOrder` keeps the keys sorted and moves only the items
whose key changed (``bisect``: a search and a move of pointers each), so a refresh costs what
changed. Keys must be unique and totally ordered (each ends with the item's own id); the owner
remembers each item's current key (to remove or re-place it).
"""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass, field
from typing import Any, Generic, Iterable, TypeVar

T = TypeVar("T")


@dataclass
class KeptOrder(Generic[T]):
    _keys: list[Any] = field(default_factory=list)
    _items: list[T] = field(default_factory=list)

    def reset(self, pairs: Iterable[tuple[Any, T]]) -> None:
        """Everything at once: (key, item) pairs, sorted here (a full rebuild)."""
        ordered = sorted(pairs, key=lambda pair: pair[0])
        self._keys = [k for k, _ in ordered]
        self._items = [item for _, item in ordered]

    def add(self, key: Any, item: T) -> None:
        at = bisect_left(self._keys, key)
        self._keys.insert(at, key)
        self._items.insert(at, item)

    def remove(self, key: Any) -> None:
        at = self._at(key)
        del self._keys[at]
        del self._items[at]

    def replace(self, old: Any, key: Any, item: T) -> None:
        """The item that had key ``old`` is now ``item`` with key ``key`` (moved if the key changed)."""
        if old == key:
            self._items[self._at(key)] = item
        else:
            self.remove(old)
            self.add(key, item)

    def items(self) -> list[T]:
        """The items in order: a new list (the caller may keep it while this one moves on)."""
        return list(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def _at(self, key: Any) -> int:
        at = bisect_left(self._keys, key)
        if at == len(self._keys) or self._keys[at] != key:
            raise KeyError(key)
        return at
