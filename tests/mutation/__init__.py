"""Mutation testing of the security-critical modules: ``make test-mutation`` (docs/mutation.md)."""
