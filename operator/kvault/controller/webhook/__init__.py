"""The workload-identity mutating webhook: pods labelled ``kvault.io/use: "true"`` get what
``DefaultAzureCredential`` needs to reach kvault (token file, ids, authority, CA bundle)."""
