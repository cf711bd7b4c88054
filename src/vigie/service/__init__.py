"""The vigie HTTP service: FastAPI app, API keys with scopes, problem+json errors."""
