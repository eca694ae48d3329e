"""The data plane's CA, one for every replica: sealed in storage, not kept per pod.

Clients trust one CA (the ``kvault-ca`` ConfigMap, the webhook's ``caBundle``) whichever
replica the Service sends them to, so the CA cannot live in each pod's data directory. The
first replica to start stores it, sealed under the system keyring like the token-signing keys
(compare-and-set: replicas starting together all take the winner's). An installation from
before keeps the CA its data directory held: that one is imported, and its key file removed.
Only the certificate is written to the data directory (``KVAULT_CA_FILE``); the key stays in
memory.
"""

from __future__ import annotations

import json
from pathlib import Path

from kvault.barrier import rows
from kvault.barrier.context import Context
from kvault.barrier.view import ABSENT, SealedView
from kvault.crypto import certs
from kvault.crypto.authority import CA_CERT, CA_KEY, CA_VALIDITY, CertificateAuthority
from kvault.errors import StorageConflict

ROW = rows.TLS_CA
CONTEXT = Context(rows.SYSTEM, "tls-ca", "ca")


async def shared_authority(view: SealedView, directory: Path) -> CertificateAuthority:
    """The installation's CA (created or imported on first start), its certificate in
    ``directory``."""
    found = await view.get(ROW, CONTEXT)
    raw = found[1] if found is not None else await _store(view, _local_or_new(directory))
    (directory / CA_KEY).unlink(missing_ok=True)  # the sealed copy is the CA now
    doc = json.loads(raw)
    return CertificateAuthority.from_pem(
        doc["cert"].encode(), doc["key"].encode(), directory / CA_CERT
    )


async def _store(view: SealedView, ca: CertificateAuthority) -> bytes:
    """Store ``ca`` unless another replica stored one first; the stored one's record."""
    cert_pem, key_pem = ca.pems()
    raw = json.dumps({"cert": cert_pem.decode(), "key": key_pem.decode()}).encode()
    txn = view.txn()
    await txn.put(ROW, CONTEXT, raw, ABSENT)
    try:
        await view.commit(txn)
    except StorageConflict:
        found = await view.get(ROW, CONTEXT)
        if found is None:
            raise
        return found[1]
    return raw


def _local_or_new(directory: Path) -> CertificateAuthority:
    """The CA a data directory already holds, else a new one (in memory only)."""
    if (directory / CA_CERT).exists() and (directory / CA_KEY).exists():
        return CertificateAuthority.load_or_create(directory)
    cert, key = certs.self_signed_ca("kvault CA", CA_VALIDITY, path_length=0)
    return CertificateAuthority(cert, key, directory / CA_CERT)
