"""Certificates: Azure Key Vault certificates on the items engine.

A certificate version ``V`` of ``name`` is three items committed together: the certificate
(leaf and chain), the key ``name/V`` (its private key, usable for sign and decrypt) and the
secret ``name/V`` (the PFX or PEM bundle). Key and secret are *managed*: they change only
through the certificate, and delete, recover, purge, backup and restore move all three.
Issuers: ``Self`` (self-signed), ``Unknown`` (a CSR for an external CA, completed by
``merge``), and issuers of provider ``kvault-ca`` that sign with a CA certificate of the
same vault (whose key never leaves kvault, or the HSM in a premium vault).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from kvault.crypto import bundles
from kvault.crypto import x509build as xb
from kvault.errors import BadParameter, Conflict, NotFound
from kvault.hsm.base import HSM
from kvault.vault import layout
from kvault.vault.certificates import issuance
from kvault.vault.certificates.base import new_request_id, operation_view
from kvault.vault.certificates.companions import CertCompanions
from kvault.vault.certificates.kind import CERTIFICATE, CertMeta, CertValue
from kvault.vault.certificates.policy import CertificatePolicy
from kvault.vault.certificates.records import PendingRecord
from kvault.vault.certificates.schedules import CertSchedules
from kvault.vault.core import LOCAL, Caller, Core, Outcome
from kvault.vault.items import paging
from kvault.vault.items.base import SCHEDULER, UNSET
from kvault.vault.items.engine import Items
from kvault.vault.keys import Keys
from kvault.vault.keys.kind import KeyValue
from kvault.vault.model import (
    Certificate,
    CertificateOperation,
    CertificateProperties,
    DeletedCertificate,
    Page,
    VaultInfo,
)
from kvault.vault.secrets import Secrets

__all__ = ["CERTIFICATE", "KVAULT_CA", "Certificates"]

#: The provider name of kvault's own CA issuer (``credentials.account_id`` names the CA
#: certificate in the same vault).
KVAULT_CA = "kvault-ca"
SELF, UNKNOWN = "self", "unknown"


def _der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(Encoding.DER)


class Certificates(
    CertCompanions,
    CertSchedules,
    Items[CertMeta, CertValue, CertificateProperties, Certificate, DeletedCertificate],
):
    """Every operation on certificates (companion rows in :mod:`.companions`, what the
    renewal scheduler reads in :mod:`.schedules`)."""

    def __init__(
        self,
        core: Core,
        keys: Keys,
        secrets: Secrets,
        hsm: HSM,
        *,
        validity_floor: int | None = None,
    ) -> None:
        super().__init__(core, keys, secrets, validity_floor)
        self.owned = (keys, secrets)

    # -- new versions ---------------------------------------------------------------------

    async def create(
        self,
        vault_name: str,
        name: str,
        policy_doc: Any,
        *,
        enabled: bool = True,
        tags: Mapping[str, str] | None = None,
        caller: Caller = LOCAL,
    ) -> CertificateOperation:
        """Start creating a version: done at once for ``Self`` and kvault CA issuers (the
        operation is ``completed``), a CSR waiting for ``merge`` for ``Unknown``."""
        core = self._core
        with core.audited(caller, vault_name, self._ops["Create"], name) as outcome:
            lname = self._lname(name)
            now = core.now()
            policy = CertificatePolicy.from_request(
                policy_doc, now, validity_floor=self._validity_floor
            )
            if not isinstance(enabled, bool):
                raise BadParameter("attributes.enabled must be true or false")
            vault = await core.active_vault(vault_name)
            self._authorize(caller, vault, self._ops["Create"], name)
            if await self._head(vault, lname) is None:
                await self._refuse_deleted(vault, lname, name)
            outcome.version = version = uuid.uuid4().hex
            issuer = policy.issuer.name.lower()
            if issuer == UNKNOWN:
                return await self._request(vault, lname, name, version, policy, enabled, tags)
            await self._issue(vault, lname, name, version, policy, enabled, tags, now)
            found = await self._pending(vault, lname)
            assert found is not None
            return operation_view(name, found[1])

    async def _request(
        self,
        vault: VaultInfo,
        lname: str,
        name: str,
        version: str,
        policy: CertificatePolicy,
        enabled: bool,
        tags: Mapping[str, str] | None,
    ) -> CertificateOperation:
        """Unknown issuer: a key and a CSR; the key waits (sealed) in the operation row."""
        material = self._keys.material
        key = await self._new_key(vault, version, policy)
        try:
            spec = issuance.spec(policy, self._core.now())
            csr = await xb.csr(spec, issuance.public_key(key), issuance.signer(material, key))
        except (xb.CertError, ValueError) as exc:
            await material.destroy(key)
            raise BadParameter(str(exc)) from None
        record = PendingRecord(
            issuer=policy.issuer.name,
            status="inProgress",
            request_id=new_request_id(),
            version=version,
            csr=csr.public_bytes(Encoding.DER),
            status_details="Pending certificate created. Please Perform Merge to complete the "
            "request.",
            key=self._keys.kind.codec.encode_value(key),
            enabled=enabled,
            tags=dict(tags or {}),
            name=name,
            created=self._core.now(),
        )

        async def attempt() -> None:
            txn = self._core.store.txn()
            await self._put_policy(txn, vault, lname, policy)
            await self._put_pending(txn, vault, lname, record)
            await self._core.store.commit(txn)

        try:
            await self._retry(attempt)
        except BaseException:
            await material.destroy(key)
            raise
        return operation_view(name, record)

    async def _new_key(self, vault: VaultInfo, version: str, policy: CertificatePolicy) -> KeyValue:
        k = policy.key
        return await self._keys.material.generate(
            vault,
            version,
            k.kty,
            size=k.key_size if k.kty.startswith("RSA") else None,
            crv=k.crv if k.kty.startswith("EC") else None,
        )

    async def _issue(
        self,
        vault: VaultInfo,
        lname: str,
        name: str,
        version: str,
        policy: CertificatePolicy,
        enabled: bool,
        tags: Mapping[str, str] | None,
        now: int,
        reuse: KeyValue | None = None,
    ) -> Certificate:
        """A signed version (Self or a kvault CA), committed with its key and secret."""
        material = self._keys.material
        key = reuse or await self._new_key(vault, version, policy)
        try:
            spec = issuance.spec(policy, now)
            public = issuance.public_key(key)
            ca = await self._authority(vault, policy.issuer.name)
            if ca is None:
                leaf = await xb.issue(
                    spec,
                    public,
                    issuer=None,
                    issuer_public=public,
                    sign=issuance.signer(material, key),
                )
                chain: list[x509.Certificate] = []
            else:
                ca_cert, ca_chain, ca_key = ca
                leaf = await xb.issue(
                    spec,
                    public,
                    issuer=ca_cert,
                    issuer_public=issuance.public_key(ca_key),
                    sign=issuance.signer(material, ca_key),
                )
                chain = [ca_cert, *ca_chain]
        except (xb.CertError, ValueError) as exc:
            if reuse is None:
                await material.destroy(key)
            raise BadParameter(str(exc)) from None
        return await self._commit(
            vault,
            lname,
            name,
            version,
            policy,
            key,
            [leaf, *chain],
            enabled,
            tags,
            now,
            discard=reuse is None,
        )

    async def _authority(
        self, vault: VaultInfo, issuer: str
    ) -> tuple[x509.Certificate, list[x509.Certificate], KeyValue] | None:
        """The CA certificate, its chain and key a named issuer signs with; ``None`` for
        ``Self``."""
        if issuer.lower() == SELF:
            return None
        record = await self._issuer(vault, issuer)
        if record is None:
            raise BadParameter(f"policy.issuer.name: no issuer named {issuer!r} in this vault")
        if record.provider != KVAULT_CA or not record.account_id:
            raise BadParameter(
                f"policy.issuer.name: issuer {issuer!r} has provider {record.provider!r}; "
                f"kvault signs with Self, Unknown (CSR and merge) or provider {KVAULT_CA!r}"
            )
        if not record.enabled:
            raise BadParameter(f"policy.issuer.name: issuer {issuer!r} is disabled")
        ca_lname = self._lname(record.account_id)
        head = await self._head(vault, ca_lname)
        if head is None:
            raise BadParameter(
                f"issuer {issuer!r} names CA certificate {record.account_id!r}, which does not "
                "exist in this vault"
            )
        version = head[1].meta.version
        found = await self._version(vault, ca_lname, version)
        key = await self._keys._version(vault, ca_lname, version)
        if found is None or key is None:
            raise BadParameter(f"CA certificate {record.account_id!r} has no key")
        ca_cert = x509.load_der_x509_certificate(found[1].value.cer)
        try:
            is_ca = ca_cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
        except x509.ExtensionNotFound:
            is_ca = False
        if not is_ca:
            raise BadParameter(
                f"certificate {record.account_id!r} is not a CA (basic_constraints.ca is false)"
            )
        chain = [x509.load_der_x509_certificate(c) for c in found[1].value.chain]
        return ca_cert, chain, key[1].value

    async def _commit(
        self,
        vault: VaultInfo,
        lname: str,
        name: str,
        version: str,
        policy: CertificatePolicy,
        key: KeyValue,
        chain: list[x509.Certificate],
        enabled: bool,
        tags: Mapping[str, str] | None,
        now: int,
        *,
        discard: bool = True,
        pending: PendingRecord | None = None,
    ) -> Certificate:
        """Stage certificate, key and secret version ``version`` (and the policy, and the
        operation as completed) in one commit."""
        leaf = chain[0]
        nbf = int(leaf.not_valid_before_utc.timestamp())
        exp = int(leaf.not_valid_after_utc.timestamp())
        common = (name, version, enabled, now, now, nbf, exp)
        kmeta = self._keys.kind.codec.meta(
            *common, {}, True, kty=policy.key.kty, key_ops=policy.key_ops()
        )
        smeta = self._secrets.kind.codec.meta(
            *common, {}, True, content_type=policy.secret_content_type
        )
        cmeta = self._codec.meta(*common, dict(tags or {}), False, x5t=xb.x5t(leaf))
        value = CertValue(_der(leaf), tuple(_der(c) for c in chain[1:]))
        secret = issuance.secret_value(self._keys.material, policy, key, chain)
        record = pending or PendingRecord(
            issuer=policy.issuer.name,
            status="completed",
            request_id=new_request_id(),
            version=version,
        )
        done = PendingRecord(
            issuer=record.issuer,
            status="completed",
            request_id=record.request_id,
            version=version,
            csr=record.csr,
            name=name,
            created=record.created,
        )

        async def attempt() -> None:
            txn = self._core.store.txn()
            if pending is not None:
                # a merge completes the operation it read only while that still waits: of
                # merges (or a cancel) racing it, one wins; the others find none pending
                found = await self._pending(vault, lname)
                if found is None or (found[1].status, found[1].request_id) != (
                    "inProgress",
                    pending.request_id,
                ):
                    raise NotFound(
                        f"Pending certificate not found: {name}", "PendingCertificateNotFound"
                    )
                row, ctx = layout.certificate_row(vault.id, "co", lname)
                await txn.put(row, ctx, done.encode(), found[0])
            await self.stage_version(txn, vault, lname, cmeta, value)
            await self._keys.stage_version(txn, vault, lname, kmeta, key, owner=True)
            await self._secrets.stage_version(txn, vault, lname, smeta, secret, owner=True)
            await self._put_policy(txn, vault, lname, policy)
            if pending is None:
                await self._put_pending(txn, vault, lname, done)
            await self._core.store.commit(txn)

        try:
            await self._retry(attempt)
        except BaseException:
            if discard:
                await self._keys.material.destroy(key)
            raise
        props = self.kind.properties(cmeta, vault)
        return Certificate(props, value.cer, value.chain, policy)  # the current one: just put

    async def import_certificate(
        self,
        vault_name: str,
        name: str,
        data: bytes,
        *,
        password: str | None = None,
        policy_doc: Any = None,
        enabled: bool = True,
        tags: Mapping[str, str] | None = None,
        caller: Caller = LOCAL,
    ) -> Certificate:
        """Import a PFX (with or without password) or a PEM (key and certificates)."""
        core = self._core
        with core.audited(caller, vault_name, self._ops["Import"], name) as outcome:
            lname = self._lname(name)
            now = core.now()
            try:
                private, chain = bundles.load_import(data, password)
            except xb.CertError as exc:
                raise BadParameter(str(exc)) from None
            hint = "application/x-pem-file" if data.lstrip().startswith(b"-----") else None
            policy = CertificatePolicy.for_import(policy_doc, chain[0], now, content_type_hint=hint)
            vault = await core.active_vault(vault_name)
            self._authorize(caller, vault, self._ops["Import"], name)
            if await self._head(vault, lname) is None:
                await self._refuse_deleted(vault, lname, name)
            outcome.version = version = uuid.uuid4().hex
            key = await self._keys.material.imported(vault, version, policy.key.kty, private)
            return await self._commit(
                vault, lname, name, version, policy, key, chain, enabled, tags, now
            )

    async def merge(
        self,
        vault_name: str,
        name: str,
        x5c: Sequence[bytes],
        *,
        enabled: bool | None = None,
        tags: Mapping[str, str] | None = None,
        caller: Caller = LOCAL,
    ) -> Certificate:
        """Complete an ``Unknown`` issuer's operation with the chain the CA signed."""
        core = self._core
        with core.audited(caller, vault_name, self._ops["Merge"], name) as outcome:
            lname = self._lname(name)
            if not x5c:
                raise BadParameter("x5c must hold the signed certificate (and its chain)")
            vault = await core.active_vault(vault_name)
            self._authorize(caller, vault, self._ops["Merge"], name)
            found = await self._pending(vault, lname)
            record = None if found is None else found[1]
            if record is None or record.status != "inProgress" or record.key is None:
                raise NotFound(
                    f"Pending certificate not found: {name}", "PendingCertificateNotFound"
                )
            outcome.version = record.version
            key = self._keys.kind.codec.decode_value(record.key)
            try:
                chain = bundles.check_merge(list(x5c), issuance.public_key(key))
            except xb.CertError as exc:
                raise BadParameter(str(exc)) from None
            policy = await self._policy(vault, lname)
            if policy is None:
                raise Conflict(f"certificate {name} has no policy to merge under")
            return await self._commit(
                vault,
                lname,
                name,
                record.version,
                policy[1],
                key,
                chain,
                record.enabled if enabled is None else enabled,
                tags if tags is not None else record.tags,
                core.now(),
                discard=False,
                pending=record,
            )

    async def renew(self, vault_name: str, name: str, *, caller: Caller = SCHEDULER) -> Certificate:
        """A new version under the stored policy (``AutoRenew``); ``reuse_key`` keeps the
        current key. Audited as ``CertificateRenew``."""
        core = self._core
        with core.audited(caller, vault_name, self._ops["Renew"], name) as outcome:
            lname = self._lname(name)
            vault = await core.active_vault(vault_name)
            self._authorize(caller, vault, self._ops["Renew"], name)
            head = await self._head(vault, lname)
            policy = await self._policy(vault, lname)
            if head is None or policy is None:
                raise self._not_found(name)
            if policy[1].issuer.name.lower() == UNKNOWN:
                raise BadParameter(f"certificate {name} has issuer Unknown: renew through a CSR")
            reuse = None
            if policy[1].key.reuse_key:
                current = await self._keys._version(vault, lname, head[1].meta.version)
                reuse = None if current is None else current[1].value
            outcome.version = version = uuid.uuid4().hex
            return await self._issue(
                vault,
                lname,
                head[1].meta.name,
                version,
                policy[1],
                True,
                head[1].meta.tags,
                core.now(),
                reuse=reuse,
            )

    # -- reading and updating -------------------------------------------------------------

    async def _read(
        self, vault: VaultInfo, lname: str, name: str, version: str, outcome: Outcome
    ) -> Certificate:
        """The latest version comes with the certificate's policy (as Azure's does). While
        the first version waits for ``merge``, the latest is that pending version: disabled,
        with its policy and no certificate yet."""
        if version:
            return await super()._read(vault, lname, name, version, outcome)
        waiting = await self._waiting(vault, lname, name)
        if waiting is not None:
            outcome.version = waiting.properties.version
            return waiting
        cert = await super()._read(vault, lname, name, version, outcome)
        policy = await self._policy(vault, lname)
        return replace(cert, policy=policy and policy[1])

    async def _waiting(self, vault: VaultInfo, lname: str, name: str) -> Certificate | None:
        """The pending first version of a certificate that has none yet (and is not deleted)."""
        if await self._head(vault, lname) is not None or await self._deleted(vault, lname):
            return None
        found = await self._pending(vault, lname)
        if found is None or found[1].status != "inProgress":
            return None
        policy = await self._policy(vault, lname)
        props = self._pending_properties(vault, name, found[1])
        return Certificate(props, b"", (), policy and policy[1], pending=True)

    def _pending_properties(
        self, vault: VaultInfo, name: str, record: PendingRecord
    ) -> CertificateProperties:
        """A version waiting for ``merge``, as reads and listings show it: disabled, without
        a thumbprint."""
        created = record.created or self._core.now()
        return CertificateProperties(
            vault.name,
            name,
            record.version,
            False,
            created,
            created,
            recovery_level=vault.recovery_level,
            recoverable_days=vault.retention_days,
        )

    async def list(
        self,
        vault_name: str,
        *,
        max_results: int | None = None,
        token: str | None = None,
        include_pending: bool = False,
        caller: Caller = LOCAL,
    ) -> Page[CertificateProperties]:
        """The certificates' current versions, by name. ``include_pending`` (Azure's
        ``includePending``) adds the certificates that are not completely provisioned: those
        whose only version waits for ``merge`` (an ``Unknown`` issuer's first create), listed
        as :meth:`get` shows them (disabled, no thumbprint)."""
        if not include_pending:
            return await super().list(
                vault_name, max_results=max_results, token=token, caller=caller
            )
        core = self._core
        with core.audited(caller, vault_name, self._list):
            size = paging.page_size(max_results)
            vault = await core.active_vault(vault_name)
            self._authorize(caller, vault, self._list, None)
            return await self._page_with_pending(vault, size, token)

    async def _page_with_pending(
        self, vault: VaultInfo, size: int, token: str | None
    ) -> Page[CertificateProperties]:
        """One page of the heads and the pending-only operations merged by name. Both are
        read a page at a time from where the token points; a name is final once it sorts
        at or before the last row of every source that has more (so a long run of
        completed operations costs reads, never memory). The token is the last name, as in
        every listing."""
        store = self._core.store
        heads = self._rows.heads(vault.id)
        operations = layout.certificate_rows(vault.id, "co")
        start = paging.start_after(token, self._lname)
        out: list[CertificateProperties] = []
        while True:
            found_heads, more_heads = await store.page(
                heads,
                lambda lname: self._rows.head_context(vault.id, lname),
                start_after=start,
                size=size,
            )
            found_ops, more_ops = await store.page(
                operations,
                lambda lname: layout.certificate_context(vault.id, "co", lname),
                start_after=start,
                size=size,
            )
            ends = [
                rows[-1].suffix
                for rows, more in ((found_heads, more_heads), (found_ops, more_ops))
                if more
            ]
            bound = min(ends) if ends else None
            props = {
                row.suffix: self.kind.properties(self._codec.decode_head(row.plaintext).meta, vault)
                for row in found_heads
            }
            for row in found_ops:
                if row.suffix in props:
                    continue  # a certificate with versions: listed by its head
                record = PendingRecord.decode(row.plaintext)
                if record.status == "inProgress" and not await self._deleted(vault, row.suffix):
                    name = record.name or row.suffix
                    props[row.suffix] = self._pending_properties(vault, name, record)
            window = sorted(n for n in props if bound is None or n <= bound)
            taken = window[: size - len(out)]
            out.extend(props[n] for n in taken)
            if len(out) == size:
                more = len(taken) < len(window) or bound is not None
                return Page(out, paging.token(taken[-1]) if more else None)
            if bound is None:
                return Page(out, None)
            start = bound

    async def issued(
        self, vault_name: str, name: str, version: str
    ) -> CertificateProperties | None:
        """The properties of version ``version`` of ``name`` once it is issued; ``None``
        while it waits for ``merge`` (or when it is gone). The operator's read for its
        ``CertificateIssued`` notice of a change it was told of: not audited, and no value
        leaves (the leaf is public, the key and secret are not read)."""
        vault = await self._core.active_vault(vault_name)
        found = await self._version(vault, self._lname(name), version)
        return None if found is None else self.kind.properties(found[1].meta, vault)

    async def with_content(self, vault_name: str, props: CertificateProperties) -> Certificate:
        """The version ``props`` describes, with its certificate (and the policy when it is
        the current one): what Azure returns after update, recover and restore. Read after
        the audited operation that authorised it."""
        vault = await self._core.active_vault(vault_name)
        lname = self._lname(props.name)
        found = await self._version(vault, lname, props.version)
        if found is None:
            # purged since the operation that authorised this read committed: it succeeded
            # (and is audited so), so it answers without the certificate, not 404
            return Certificate(props, b"", ())
        head = await self._head(vault, lname)
        current = head is not None and head[1].meta.version == props.version
        policy = await self._policy(vault, lname) if current else None
        value = found[1].value
        return Certificate(props, value.cer, value.chain, policy and policy[1])

    async def delete(
        self, vault_name: str, name: str, *, caller: Caller = LOCAL
    ) -> DeletedCertificate:
        gone = await super().delete(vault_name, name, caller=caller)
        return replace(gone, certificate=await self.with_content(vault_name, gone.properties))

    async def get_deleted(
        self, vault_name: str, name: str, *, caller: Caller = LOCAL
    ) -> DeletedCertificate:
        gone = await super().get_deleted(vault_name, name, caller=caller)
        return replace(gone, certificate=await self.with_content(vault_name, gone.properties))

    async def update(
        self,
        vault_name: str,
        name: str,
        version: str = "",
        *,
        enabled: bool | None = None,
        tags: Mapping[str, str] | None = None,
        caller: Caller = LOCAL,
    ) -> Certificate:
        """Only the certificate's attributes and tags change (as Azure's PATCH); returns the
        certificate."""
        props = await self.update_version(
            vault_name,
            name,
            version,
            attributes={},
            enabled=enabled,
            not_before=UNSET,
            expires=UNSET,
            tags=tags,
            caller=caller,
        )
        return await self.with_content(vault_name, props)
