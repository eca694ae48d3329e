"""X.509 and JWK helpers shared by the data plane's TLS, the webhook, the tests and e2e.

A leaf of the layer graph: any layer may use it, and it imports none of them, so the
certificates kind can build on the same CA and leaf code as the servers do.
"""
