"""``VaultSecret``: project vault items into a Kubernetes Secret, one concern per module
(plan, identity, access, sources, reading, rendering, the Secret, restarts, status)."""
