// GraphiQL from the platform's own build (no CDN: it works offline), signed in as the admin UI's user: the token
// and tenant the app keeps in localStorage are sent as headers, queries over HTTP, subscriptions over
// graphql-transport-ws.
import { createGraphiQLFetcher } from "@graphiql/toolkit";
import { GraphiQL } from "graphiql";
import "graphiql/style.css";
import { StrictMode } from "react";
import { createRoot } from "react-dom/client";
import { TENANT_KEY, TOKEN_KEY } from "../state/keys";

const headers: Record<string, string> = {};
const token = localStorage.getItem(TOKEN_KEY);
const tenant = localStorage.getItem(TENANT_KEY);
if (token) headers.Authorization = `Bearer ${token}`;
if (tenant) headers["X-Tenant-Id"] = tenant;

const origin = `${location.protocol}//${location.host}`;
const fetcher = createGraphiQLFetcher({
  url: `${origin}/graphql`,
  subscriptionUrl: `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/graphql`,
  headers,
  wsConnectionParams: headers,
});

createRoot(document.getElementById("graphiql")!).render(
  <StrictMode>
    <GraphiQL fetcher={fetcher} defaultHeaders={JSON.stringify(headers, null, 2)} shouldPersistHeaders={false} />
  </StrictMode>,
);
