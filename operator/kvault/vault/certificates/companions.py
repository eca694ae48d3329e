"""The certificate operations on companion rows: the pending create operation (get, cancel,
delete), the policy (get, PATCH), the vault's contacts and issuers. Each is audited and
authorised like every operation; a changed policy is on the change feed."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from kvault.barrier.view import ABSENT, Txn
from kvault.errors import BadParameter, NotFound
from kvault.vault import layout, names
from kvault.vault.certificates.base import CertBase, operation_view
from kvault.vault.certificates.policy import CertificatePolicy
from kvault.vault.certificates.records import (
    IssuerRecord,
    PendingRecord,
    decode_contacts,
    encode_contacts,
)
from kvault.vault.core import LOCAL, Caller
from kvault.vault.keys.kind import KeyValue
from kvault.vault.model import CertificateOperation, VaultInfo
from kvault.vault.records import dump

#: Contacts are one row per vault.
_CONTACTS = "contacts"
_CONTACT_FIELDS = ("email", "name", "phone")
_ADMIN_FIELDS = ("first_name", "last_name", "email", "phone")


def _no_pending(name: str) -> NotFound:
    return NotFound(f"Pending certificate not found: {name}", "PendingCertificateNotFound")


class CertCompanions(CertBase):
    # -- writing companion rows (inside a certificate's commit) ---------------------------

    async def _put_policy(
        self, txn: Txn, vault: VaultInfo, lname: str, policy: CertificatePolicy
    ) -> None:
        key, ctx = layout.certificate_row(vault.id, "cp", lname)
        found = await self._core.read(key, ctx)
        await txn.put(key, ctx, dump(policy.to_doc()), ABSENT if found is None else found[0])

    async def _put_pending(
        self, txn: Txn, vault: VaultInfo, lname: str, record: PendingRecord
    ) -> None:
        key, ctx = layout.certificate_row(vault.id, "co", lname)
        found = await self._core.read(key, ctx)
        await txn.put(key, ctx, record.encode(), ABSENT if found is None else found[0])

    # -- the pending operation ------------------------------------------------------------

    async def get_operation(
        self, vault_name: str, name: str, *, caller: Caller = LOCAL
    ) -> CertificateOperation:
        core = self._core
        op = self._ops["GetOperation"]
        with core.audited(caller, vault_name, op, name):
            lname = self._lname(name)
            vault = await core.active_vault(vault_name)
            self._authorize(caller, vault, op, name)
            found = await self._pending(vault, lname)
            if found is None:
                raise _no_pending(name)
            return operation_view(name, found[1])

    async def cancel_operation(
        self, vault_name: str, name: str, *, caller: Caller = LOCAL
    ) -> CertificateOperation:
        """Cancel a pending (``Unknown`` issuer) operation; its waiting key is destroyed."""
        return await self._end_operation(vault_name, name, caller, delete=False)

    async def delete_operation(
        self, vault_name: str, name: str, *, caller: Caller = LOCAL
    ) -> CertificateOperation:
        """Forget the operation; a version it had not created yet is never created."""
        return await self._end_operation(vault_name, name, caller, delete=True)

    async def _end_operation(
        self, vault_name: str, name: str, caller: Caller, *, delete: bool
    ) -> CertificateOperation:
        core = self._core
        op = self._ops["DeleteOperation" if delete else "UpdateOperation"]
        with core.audited(caller, vault_name, op, name):
            lname = self._lname(name)
            vault = await core.active_vault(vault_name)
            self._authorize(caller, vault, op, name)
            waiting: list[bytes] = []

            async def attempt() -> PendingRecord:
                found = await self._pending(vault, lname)
                if found is None:
                    raise _no_pending(name)
                record = found[1]
                key, _ = layout.certificate_row(vault.id, "co", lname)
                txn = core.store.txn()
                if delete:
                    txn.delete(key, found[0])
                    ended = record
                else:
                    pending = record.status == "inProgress"
                    ended = replace(
                        record,
                        cancellation_requested=True,
                        status="cancelled" if pending else record.status,
                        key=None,
                    )
                    await self._put_pending(txn, vault, lname, ended)
                await core.store.commit(txn)
                if record.key is not None:
                    waiting.append(record.key)
                return ended

            ended = await self._retry(attempt)
            for raw in waiting:  # the key that was waiting for a merge
                value: KeyValue = self._keys.kind.codec.decode_value(raw)
                await self._keys.material.destroy(value)
            return operation_view(name, ended)

    # -- the policy -----------------------------------------------------------------------

    async def get_policy(
        self, vault_name: str, name: str, *, caller: Caller = LOCAL
    ) -> CertificatePolicy:
        core = self._core
        op = self._ops["GetPolicy"]
        with core.audited(caller, vault_name, op, name):
            lname = self._lname(name)
            vault = await core.active_vault(vault_name)
            self._authorize(caller, vault, op, name)
            found = await self._policy(vault, lname)
            if found is None:
                raise self._not_found(name)
            return found[1]

    async def update_policy(
        self, vault_name: str, name: str, patch: Any, *, caller: Caller = LOCAL
    ) -> CertificatePolicy:
        """Change the members ``patch`` names; the next version (renewal) follows it."""
        core = self._core
        op = self._ops["SetPolicy"]
        with core.audited(caller, vault_name, op, name):
            lname = self._lname(name)
            if not isinstance(patch, Mapping):
                raise BadParameter("the policy must be a JSON object")
            vault = await core.active_vault(vault_name)
            self._authorize(caller, vault, op, name)

            async def attempt() -> CertificatePolicy:
                found = await self._policy(vault, lname)
                if found is None:
                    raise self._not_found(name)
                policy = found[1].merged(patch, core.now(), validity_floor=self._validity_floor)
                txn = core.store.txn()
                await self._put_policy(txn, vault, lname, policy)
                await core.store.commit(txn)
                return policy

            return await self._retry(attempt)

    # -- contacts -------------------------------------------------------------------------

    async def _contacts_op(
        self,
        vault_name: str,
        verb: str,
        caller: Caller,
        new: list[dict[str, str]] | None = None,
    ) -> list[dict[str, str]]:
        core = self._core
        op = self._ops[verb]
        with core.audited(caller, vault_name, op):
            vault = await core.active_vault(vault_name)
            self._authorize(caller, vault, op, None)

            async def attempt() -> list[dict[str, str]]:
                found = await self._companion(vault, "cc", _CONTACTS)
                if verb == "GetContacts" or (verb == "DeleteContacts" and found is None):
                    if found is None:
                        raise NotFound("Contacts not found", "ContactsNotFound")
                    return decode_contacts(found[1])
                key, ctx = layout.certificate_row(vault.id, "cc", _CONTACTS)
                txn = core.store.txn()
                if verb == "DeleteContacts":
                    assert found is not None
                    txn.delete(key, found[0])
                    old = decode_contacts(found[1])
                else:
                    assert new is not None
                    await txn.put(
                        key, ctx, encode_contacts(new), ABSENT if found is None else found[0]
                    )
                    old = new
                await core.store.commit(txn)
                return old

            return await self._retry(attempt)

    async def get_contacts(
        self, vault_name: str, *, caller: Caller = LOCAL
    ) -> list[dict[str, str]]:
        return await self._contacts_op(vault_name, "GetContacts", caller)

    async def set_contacts(
        self, vault_name: str, contacts: Any, *, caller: Caller = LOCAL
    ) -> list[dict[str, str]]:
        """Replace the vault's certificate contacts (who ``EmailContacts`` tells)."""
        return await self._contacts_op(vault_name, "SetContacts", caller, _contacts(contacts))

    async def delete_contacts(
        self, vault_name: str, *, caller: Caller = LOCAL
    ) -> list[dict[str, str]]:
        return await self._contacts_op(vault_name, "DeleteContacts", caller)

    # -- issuers --------------------------------------------------------------------------

    async def _issuer(self, vault: VaultInfo, name: str) -> IssuerRecord | None:
        found = await self._companion(vault, "ci", name.lower())
        return None if found is None else IssuerRecord.decode(found[1])

    async def get_issuer(
        self, vault_name: str, name: str, *, caller: Caller = LOCAL
    ) -> IssuerRecord:
        core = self._core
        op = self._ops["GetIssuer"]
        with core.audited(caller, vault_name, op, name):
            names.item_name(name, "issuer")
            vault = await core.active_vault(vault_name)
            self._authorize(caller, vault, op, None)
            record = await self._issuer(vault, name)
            if record is None:
                raise NotFound(f"Issuer not found: {name}", "CertificateIssuerNotFound")
            return record

    async def list_issuers(self, vault_name: str, *, caller: Caller = LOCAL) -> list[IssuerRecord]:
        core = self._core
        op = self._ops["ListIssuers"]
        with core.audited(caller, vault_name, op):
            vault = await core.active_vault(vault_name)
            self._authorize(caller, vault, op, None)
            rows = await core.store.scan(
                layout.certificate_rows(vault.id, "ci"),
                lambda lname: layout.certificate_context(vault.id, "ci", lname),
            )
            return [IssuerRecord.decode(r.plaintext) for r in rows]

    async def set_issuer(
        self, vault_name: str, name: str, doc: Any, *, patch: bool = False, caller: Caller = LOCAL
    ) -> IssuerRecord:
        """Create or replace (``PUT``) or change (``PATCH``) an issuer."""
        core = self._core
        op = self._ops["SetIssuer"]
        with core.audited(caller, vault_name, op, name):
            names.item_name(name, "issuer")
            if not isinstance(doc, Mapping):
                raise BadParameter("the issuer must be a JSON object")
            vault = await core.active_vault(vault_name)
            self._authorize(caller, vault, op, None)

            async def attempt() -> IssuerRecord:
                key, ctx = layout.certificate_row(vault.id, "ci", name.lower())
                found = await core.read(key, ctx)
                old = None if found is None else IssuerRecord.decode(found[1])
                if patch and old is None:
                    raise NotFound(f"Issuer not found: {name}", "CertificateIssuerNotFound")
                record = _issuer_record(name, doc, old if patch else None, old, core.now())
                txn = core.store.txn()
                await txn.put(key, ctx, record.encode(), ABSENT if found is None else found[0])
                await core.store.commit(txn)
                return record

            return await self._retry(attempt)

    async def delete_issuer(
        self, vault_name: str, name: str, *, caller: Caller = LOCAL
    ) -> IssuerRecord:
        core = self._core
        op = self._ops["DeleteIssuer"]
        with core.audited(caller, vault_name, op, name):
            names.item_name(name, "issuer")
            vault = await core.active_vault(vault_name)
            self._authorize(caller, vault, op, None)

            async def attempt() -> IssuerRecord:
                key, ctx = layout.certificate_row(vault.id, "ci", name.lower())
                found = await core.read(key, ctx)
                if found is None:
                    raise NotFound(f"Issuer not found: {name}", "CertificateIssuerNotFound")
                txn = core.store.txn()
                txn.delete(key, found[0])
                await core.store.commit(txn)
                return IssuerRecord.decode(found[1])

            return await self._retry(attempt)


def _string(doc: Mapping[str, Any], field: str, where: str) -> str | None:
    value = doc.get(field)
    if value is not None and not isinstance(value, str):
        raise BadParameter(f"{where}{field} must be a string")
    return value


def _contacts(given: Any) -> list[dict[str, str]]:
    if not isinstance(given, list):
        raise BadParameter("contacts must be a list of {email, name, phone} objects")
    out = []
    for i, c in enumerate(given):
        if not isinstance(c, Mapping):
            raise BadParameter(f"contacts[{i}] must be an object")
        entry = {f: v for f in _CONTACT_FIELDS if (v := _string(c, f, f"contacts[{i}]."))}
        if "@" not in entry.get("email", "@"):
            raise BadParameter(f"contacts[{i}].email is not an e-mail address")
        out.append(entry)
    return out


def _given(doc: Mapping[str, Any], field: str, where: str = "") -> Mapping[str, Any] | None:
    """An object member: ``None`` when it is missing or null."""
    value = doc.get(field)
    if value is not None and not isinstance(value, Mapping):
        raise BadParameter(f"{where}{field} must be an object")
    return value


def _cleared(doc: Mapping[str, Any], field: str, where: str) -> str | None:
    """A string inside a given part: missing, null and empty all mean "none"."""
    return _string(doc, field, where) or None


def _admins(org: Mapping[str, Any]) -> tuple[dict[str, str], ...]:
    given = org.get("admin_details")
    if given is None:
        return ()
    if not isinstance(given, list):
        raise BadParameter("org_details.admin_details must be a list of objects")
    admins = []
    for i, admin in enumerate(given):
        where = f"org_details.admin_details[{i}]."
        if not isinstance(admin, Mapping):
            raise BadParameter(f"{where[:-1]} must be an object")
        admins.append({f: v for f in _ADMIN_FIELDS if (v := _string(admin, f, where))})
    return tuple(admins)


def _issuer_record(
    name: str,
    doc: Mapping[str, Any],
    base: IssuerRecord | None,
    old: IssuerRecord | None,
    now: int,
) -> IssuerRecord:
    """The record a PUT (``base`` None: the issuer ``doc`` describes) or a PATCH (``base``:
    the stored one) makes, checked whole before anything is written.

    A PATCH changes what it names, as Azure's update does: a member that is missing or null
    is left as it is; ``provider`` and ``attributes.enabled`` replace theirs; a given
    ``credentials`` or ``org_details`` replaces that part whole, so a field it leaves out,
    sends null or sends empty is cleared (``{"org_details": {"id": "o"}}`` leaves no
    administrators, which is how ``az keyvault certificate issuer admin delete`` removes the
    last one; ``{"credentials": {"account_id": "a"}}`` forgets the password)."""
    provider = _string(doc, "provider", "")
    if provider is None and base is not None:
        provider = base.provider
    if not provider:
        raise BadParameter("provider is required: a non-empty string (e.g. kvault-ca)")
    creds = _given(doc, "credentials")
    org = _given(doc, "org_details")
    attrs = _given(doc, "attributes")
    if creds is not None:
        account_id = _cleared(creds, "account_id", "credentials.")
        password = _cleared(creds, "pwd", "credentials.")
    else:
        account_id = base.account_id if base else None
        password = base.password if base else None
    if org is not None:
        org_id, admins = _cleared(org, "id", "org_details."), _admins(org)
    else:
        org_id, admins = (base.org_id, base.admins) if base else (None, ())
    enabled = None if attrs is None else attrs.get("enabled")
    if enabled is None:
        enabled = base.enabled if base else True
    if not isinstance(enabled, bool):
        raise BadParameter("attributes.enabled must be true or false")
    return IssuerRecord(
        name=name,
        provider=provider,
        account_id=account_id,
        password=password,
        org_id=org_id,
        admins=admins,
        enabled=enabled,
        created=old.created if old else now,
        updated=now,
    )
