"""What the renewal scheduler reads and writes of certificates: every certificate with a
policy, with the state its schedule derives from, and which lifetime actions were already
carried out for its current version (the ``cs`` companion row).

The ``cs`` row names one version and the actions done for it. A new version (renewed,
re-created, imported, merged) makes the row stale without touching it: it no longer names the
current version, so nothing counts as done for the new one. The row is written only by the
scheduler (after an ``EmailContacts`` notice); ``AutoRenew`` needs no record, since the new
version it makes is the record.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from kvault.barrier.view import ABSENT
from kvault.errors import IntegrityError
from kvault.vault import layout
from kvault.vault.certificates.base import CertBase
from kvault.vault.certificates.policy import CertificatePolicy, due_actions
from kvault.vault.certificates.policy_model import AUTO_RENEW, UNKNOWN
from kvault.vault.model import VaultInfo
from kvault.vault.records import dump

__all__ = ["CertSchedules", "CertificateSchedule", "DoneRecord", "renewal_at"]


def renewal_at(policy: CertificatePolicy, not_before: int, not_after: int) -> int | None:
    """When ``AutoRenew`` is due for a version valid ``[not_before, not_after]`` (the earliest
    of its triggers); ``None`` when the policy has none, is disabled, or its issuer is
    ``Unknown`` (kvault cannot sign such a certificate; only a CSR and a merge renew it)."""
    if not policy.enabled or policy.issuer.name.lower() == UNKNOWN.lower():
        return None
    times = [a.due_at(not_before, not_after) for a in policy.actions if a.action == AUTO_RENEW]
    return min(times) if times else None


@dataclass(frozen=True, slots=True)
class DoneRecord:
    """The lifetime actions carried out for ``version`` (the ``cs`` row)."""

    version: str
    done: tuple[str, ...] = ()

    def encode(self) -> bytes:
        return dump({"version": self.version, "done": sorted(self.done)})

    @classmethod
    def decode(cls, raw: bytes) -> DoneRecord:
        try:
            doc = json.loads(raw)
            version, done = doc["version"], doc["done"]
            if not isinstance(version, str) or not all(isinstance(d, str) for d in done):
                raise TypeError
            return cls(version, tuple(done))
        except (ValueError, KeyError, TypeError):
            raise IntegrityError("stored certificate schedule is malformed") from None

    def for_version(self, version: str) -> frozenset[str]:
        return frozenset(self.done) if self.version == version else frozenset()


@dataclass(frozen=True, slots=True)
class CertificateSchedule:
    """What the renewal scheduler needs about one certificate, all from stored rows: its name
    (as spelled and lower-cased), policy, current version with its validity, whether that
    version is enabled, and the actions already done for it."""

    name: str
    lname: str
    policy: CertificatePolicy
    version: str
    not_before: int
    expires: int
    enabled: bool
    done: frozenset[str] = frozenset()

    @property
    def renewable(self) -> bool:
        """``AutoRenew`` may run: the version is enabled (a renewal would make an enabled
        version of a certificate someone switched off) and kvault can sign it (not
        ``Unknown``)."""
        return self.enabled and self.policy.issuer.name.lower() != UNKNOWN.lower()

    def due(self, now: int) -> list[str]:
        """The actions due at ``now`` and not done yet, EmailContacts first."""
        due = due_actions(self.policy, self.not_before, self.expires, now, done=self.done)
        return [a for a in due if a != AUTO_RENEW or self.renewable]

    @property
    def renews_at(self) -> int | None:
        """When the scheduler renews this version (``None``: it never will)."""
        if not self.renewable:
            return None
        return renewal_at(self.policy, self.not_before, self.expires)


class CertSchedules(CertBase):
    async def schedules(self, vault_name: str) -> list[CertificateSchedule]:
        """Every certificate of the vault with a current version and a policy, with the state
        its schedule derives from (not audited: the scheduler's own read). Deleted
        certificates keep their policy row for a recovery but are left out, as are pending
        ones (an ``Unknown`` issuer's first version before its merge). Policies without
        actions are included (their expiry is still reported)."""
        core = self._core
        vault = await core.active_vault(vault_name)

        def rows(what: str) -> str:
            return layout.certificate_rows(vault.id, what)

        policies = await core.store.scan(
            rows("cp"), lambda lname: layout.certificate_context(vault.id, "cp", lname)
        )
        done = {
            row.suffix: DoneRecord.decode(row.plaintext)
            for row in await core.store.scan(
                rows("cs"), lambda lname: layout.certificate_context(vault.id, "cs", lname)
            )
        }
        out: list[CertificateSchedule] = []
        for row in policies:
            try:
                policy = CertificatePolicy.from_doc(json.loads(row.plaintext))
            except ValueError:
                raise IntegrityError("stored certificate policy is malformed") from None
            head = await self._head(vault, row.suffix)
            if head is None:
                continue
            meta = head[1].meta
            if meta.not_before is None or meta.expires is None:
                continue  # every version kvault makes has both (from the leaf)
            record = done.get(row.suffix)
            out.append(
                CertificateSchedule(
                    meta.name,
                    row.suffix,
                    policy,
                    meta.version,
                    meta.not_before,
                    meta.expires,
                    meta.enabled,
                    frozenset() if record is None else record.for_version(meta.version),
                )
            )
        return out

    async def mark_done(self, vault: VaultInfo, lname: str, version: str, action: str) -> None:
        """Record that ``action`` was carried out for ``version`` (a record of an older
        version is replaced)."""
        core = self._core

        async def attempt() -> None:
            key, ctx = layout.certificate_row(vault.id, "cs", lname)
            found = await core.read(key, ctx)
            old = None if found is None else DoneRecord.decode(found[1])
            done = set() if old is None else set(old.for_version(version))
            record = DoneRecord(version, tuple(sorted(done | {action})))
            txn = core.store.txn()
            await txn.put(key, ctx, record.encode(), ABSENT if found is None else found[0])
            await core.store.commit(txn)

        await self._retry(attempt)
