// Two pages: the admin app at / and GraphiQL at /graphql (its own entry, so the app's first load stays small).
// The build goes into the Python package, which serves it (aigc_admin/web/ui.py).
import { resolve } from "node:path";
import react from "@vitejs/plugin-react";
import { defineConfig } from "vitest/config";

const api = process.env.AIGC_UI_API ?? "http://127.0.0.1:8080";

export default defineConfig({
  plugins: [react()],
  build: {
    outDir: resolve(__dirname, "../src/aigc_admin/web/ui_build"),
    emptyOutDir: true,
    chunkSizeWarningLimit: 2500, // GraphiQL's own chunk; the app's first load is measured by bench/ui.py
    rollupOptions: {
      input: { index: resolve(__dirname, "index.html"), graphiql: resolve(__dirname, "graphiql.html") },
    },
  },
  server: {
    proxy: {
      "/graphql": { target: api, ws: true },
      "/files": api,
      "/datasets": api,
      "/evaluations": api,
      "/v1": api,
    },
  },
  test: { include: ["src/**/*.test.ts"], environment: "node" },
});
