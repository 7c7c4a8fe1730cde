"""Assistants with tools: HTTP, OpenAPI and MCP tools behind the egress guard, an agent that calls them, and
published versions served as models."""
