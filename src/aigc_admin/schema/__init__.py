"""GraphQL shapes, one module per area: object types, inputs, enums, payloads and typed errors. Shape only: the
fields that query and change them live in ``resolvers/<area>.py``; ``resolvers.root`` makes the Schema."""
