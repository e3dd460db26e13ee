"""The service's routers: health (unversioned), models and analyses (under /v1)."""
