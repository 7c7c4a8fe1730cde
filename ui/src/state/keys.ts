// Where the signed-in user's token and tenant are kept (shared with GraphiQL at /graphql, same origin).
export const TOKEN_KEY = "aigc.token";
export const TENANT_KEY = "aigc.tenant";
