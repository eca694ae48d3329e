"""The operator: kopf handlers for ``Vault`` and ``VaultSecret`` (provisioning, projection,
refresh), a Lease for one active controller, metrics. See docs/operator.md."""
