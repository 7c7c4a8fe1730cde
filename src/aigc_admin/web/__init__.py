"""The web entry points of the API process: the ASGI app (``app``), GraphQL over WebSocket with the live relay
(``graphql_ws``), middleware, the REST routes for files and datasets, and the WebSocket GC policy."""
