"""A small typed registry: plugins are found by short names, and a miss lists the valid ones."""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

from automlops.errors import ConfigError, unknown_name

T = TypeVar("T")


class Registry(Generic[T]):
    """Maps a short name (as written in YAML) to a plugin."""

    def __init__(self, kind: str) -> None:
        self.kind = kind  # the config key the name comes from, e.g. "search.engine"
        self._items: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        def add(item: T) -> T:
            if name in self._items:
                raise ValueError(f"{self.kind} '{name}' is registered twice")
            self._items[name] = item
            return item

        return add

    def get(self, name: str) -> T:
        if name not in self._items:
            raise ConfigError(unknown_name(self.kind, name, self._items))
        return self._items[name]

    def names(self) -> list[str]:
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items
