"""Certificates: the third item kind, owning a key and a secret of the same name and version.

- :mod:`.policy` — the certificate policy (``/certificates/{name}/policy``): validation with
  Azure's defaults, the import policy that reflects a certificate, storage and wire forms, the
  backing key's ``key_ops`` and the lifetime-action schedule (pure, no I/O, no clock).
"""
