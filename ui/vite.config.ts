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
    // the app's own pages share /files, /datasets and /evaluations with REST routes: a page load stays here
    proxy: Object.fromEntries(
      ["/graphql", "/files", "/datasets", "/evaluations", "/v1"].map((path) => [path, {
        target: api,
        ws: path === "/graphql",
        bypass: (req: { headers: Record<string, string | string[] | undefined> }) =>
          String(req.headers.accept ?? "").includes("text/html")
            ? (path === "/graphql" ? "/graphiql.html" : "/index.html")
            : undefined,
      }]),
    ),
  },
  test: { include: ["src/**/*.test.ts"], environment: "node" },
});
