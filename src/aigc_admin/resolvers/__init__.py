"""Thin GraphQL resolvers: validate → call the domain → map the result."""
