"""
Numbered schema migrations.

Each module here named C{vNNN_name.py} is one migration: C{STATEMENTS}, a
list of SQL statements written once for both engines with column-type
placeholders ("{pk}", "{bigint}", "{float}", "{blob}", "{json}", "{key}")
and a table option ("{keyed}" after a table's closing parenthesis: stored
by its primary key where the engine can) that the engine fills in, and
optionally C{migrate(txn)} for data changes (or a change one engine
makes its own way: C{txn.engine} names it), run after the statements in
the same transaction.  The store applies the missing ones in order at
start and records each in C{schema_version}.  Never edit a released
migration: add the next number.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
from dataclasses import dataclass
from typing import Callable, Optional

__all__ = ["Migration", "load_migrations"]

_NAME = re.compile(r"^v(\d{3,})_(\w+)$")


@dataclass(frozen=True)
class Migration:
    """One schema step."""

    version: int
    name: str
    statements: tuple
    migrate: Optional[Callable] = None

    def sql(self, types: dict[str, str]) -> list[str]:
        """The statements with the engine's column types filled in."""
        return [statement.format_map(types) for statement in self.statements]


def load_migrations(package: str = __name__) -> list[Migration]:
    """
    Find the migrations of C{package}, ordered by version.

    @raise ValueError: two modules share a version number.
    """
    module = importlib.import_module(package)
    found: dict[int, Migration] = {}
    for info in pkgutil.iter_modules(module.__path__):
        match = _NAME.match(info.name)
        if match is None:
            continue
        version = int(match.group(1))
        if version in found:
            raise ValueError(f"two migrations numbered {version} in {package}")
        mod = importlib.import_module(f"{package}.{info.name}")
        found[version] = Migration(
            version=version,
            name=match.group(2),
            statements=tuple(mod.STATEMENTS),
            migrate=getattr(mod, "migrate", None),
        )
    return [found[v] for v in sorted(found)]
