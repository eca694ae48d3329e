"""The namespaces the informers serve follow kopf's pattern rule (kopf serves the Vaults)."""

from __future__ import annotations

import pytest
from kopf._cogs.structs.references import match_namespace

from kvault.controller.namespaces import exact, matcher, matches

NAMES = ["myapp-test", "myapp-live", "myapp-pr-123", "myapp-pr-456", "otherapp-pr-123", "kvic-1"]
PATTERNS = ["myapp-*", "myapp-*, !*-pr-*, *pr-123", "!*-pr-*, *pr-123", "!kube-*", "kvic-?", "x"]


@pytest.mark.parametrize("pattern", PATTERNS)
def test_the_rule_is_kopfs(pattern: str) -> None:
    for name in NAMES:
        assert matches(name, pattern) == match_namespace(name, pattern), (name, pattern)


def test_plain_names_are_watched_one_by_one_and_patterns_cluster_wide() -> None:
    assert exact(["team-a", "team-b"])
    assert not exact(["team-a", "kvic-*"]) and not exact(["!kube-system"])
    served = matcher(["team-a", "kvic-*"])
    assert served("team-a") and served("kvic-42") and not served("team-b")
