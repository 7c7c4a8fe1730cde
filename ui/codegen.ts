// GraphQL types from the platform's exported schema: a schema change that breaks a query of the UI fails here.
import type { CodegenConfig } from "@graphql-codegen/cli";

const config: CodegenConfig = {
  schema: "../schema.graphql",
  documents: ["src/**/*.{ts,tsx}", "!src/gql/**/*"],
  ignoreNoDocuments: false,
  generates: {
    "src/gql/": {
      preset: "client",
      config: {
        documentMode: "string",
        enumsAsTypes: true,
        useTypeImports: true,
        strictScalars: true,
        scalars: { ID: "string", DateTime: "string", Date: "string", JSON: "unknown", Upload: "File" },
      },
      presetConfig: { fragmentMasking: false },
    },
  },
};
export default config;
