"""Which namespaces the operator serves: ``--namespace`` values, each a name or a pattern of
kopf's syntax (kopf watches the Vaults with them; our informers follow the same rule)."""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Sequence

_PATTERN = frozenset("*?[!, ")


def exact(patterns: Sequence[str]) -> bool:
    """Every value is a plain namespace name (one namespaced watch each will do)."""
    return not any(_PATTERN & set(p) for p in patterns)


def matcher(patterns: Sequence[str]) -> Callable[[str], bool]:
    """Whether a namespace is served: it matches any of ``patterns``."""
    return lambda name: any(matches(name, p) for p in patterns)


def matches(name: str, pattern: str) -> bool:
    """kopf's rule: comma-separated globs, left to right; ``!glob`` excludes; the first glob
    includes (a catch-all is implied before a leading exclusion), a later inclusive glob
    brings back only a namespace the first one matched."""
    globs = [g.strip() for g in pattern.split(",")]
    if not globs or globs[0].startswith("!"):
        globs.insert(0, "*")
    found = first = fnmatch.fnmatchcase(name, globs[0])
    for glob in globs[1:]:
        if glob.startswith("!"):
            found = found and not fnmatch.fnmatchcase(name, glob[1:])
        else:
            found = found or (first and fnmatch.fnmatchcase(name, glob))
    return found
