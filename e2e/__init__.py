"""End-to-end test harness: a real single-node Kubernetes built from upstream Go modules.

Modules (one job each): ``versions`` (what we build, where state lives), ``build``
(Go wrapper-module build, cached by version), ``pki`` (certificates), ``images`` (OCI
archives from busybox-static), ``config`` (component config files), ``procs`` (daemons
with pid files), ``host`` (host prep and cleanup), ``components`` (start order, flags),
``cluster`` (CLI), ``kube`` and ``wait`` (test helpers), ``fixtures`` (pytest plugin).
"""
