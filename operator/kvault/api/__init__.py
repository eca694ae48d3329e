"""The data plane: the Azure Key Vault REST API (secrets) over HTTPS, on aiohttp."""
