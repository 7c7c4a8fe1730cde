"""The OpenAI-compatible gateway: key auth, allow-list, quota, limits, routing, usage."""
