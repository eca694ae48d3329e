"""``Vault``: provision the domain vault, keep its role assignments, publish its Service and
kvault's CA, report status and item counts."""
