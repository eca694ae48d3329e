"""End-to-end test harness: a real single-node Kubernetes built from upstream Go modules.

One job per module: ``versions`` (pins, cache dirs), ``build`` (Go wrapper-module build,
cached by version), ``pki`` (certificates), ``images`` (OCI archives from busybox-static),
``layout`` (where state lives), ``config`` (component config files), ``procs`` (daemons
with pid files), ``components`` (flags, start order), ``host`` (host prep and teardown),
``lifecycle`` (up/down/status), ``cluster`` (CLI), ``probe``/``wait``/``kube`` (health
probes and test helpers), ``fixtures`` (pytest plugin). See docs/local-cluster.md.
"""
