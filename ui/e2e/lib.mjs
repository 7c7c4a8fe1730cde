// Browser-test helpers: Debian's Chromium through playwright-core (no browser download), axe-core in the page,
// a screenshot per page, and a small GraphQL client to seed what a flow needs.
import { readFileSync, mkdirSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import { chromium } from "playwright-core";

const require = createRequire(import.meta.url);
const AXE = readFileSync(require.resolve("axe-core/axe.min.js"), "utf8");

export const BASE = process.env.AIGC_E2E_URL ?? "http://127.0.0.1:8080";
export const OUT = process.env.AIGC_E2E_OUT ?? new URL("./out/", import.meta.url).pathname;
mkdirSync(OUT, { recursive: true });

export async function launch() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    args: ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
  });
}

export function log(...parts) {
  console.log(`[e2e ${new Date().toISOString().slice(11, 19)}]`, ...parts);
}

export async function api(query, variables = {}, { token, tenant } = {}) {
  const headers = { "Content-Type": "application/json" };
  if (token) headers.Authorization = `Bearer ${token}`;
  if (tenant) headers["X-Tenant-Id"] = tenant;
  const r = await fetch(`${BASE}/graphql`, { method: "POST", headers, body: JSON.stringify({ query, variables }) });
  const body = await r.json();
  if (body.errors) throw new Error(`GraphQL: ${JSON.stringify(body.errors)}`);
  for (const value of Object.values(body.data)) {
    if (value && Array.isArray(value.errors) && value.errors.length) throw new Error(`payload: ${JSON.stringify(value.errors)}`);
  }
  return body.data;
}

export async function token(username, password) {
  const data = await api("mutation($u: String!, $p: String!) { login(input: {username: $u, password: $p}) { token errors { message } } }",
    { u: username, p: password });
  if (!data.login.token) throw new Error(`login ${username}: ${JSON.stringify(data.login.errors)}`);
  return data.login.token;
}

/** Sign in through the form; English UI. */
export async function signIn(page, username, password) {
  await page.goto(`${BASE}/`);
  await page.evaluate(() => localStorage.setItem("aigc.lang", "en"));
  await page.reload();
  await page.getByLabel("Username").fill(username);
  await page.getByLabel("Password").fill(password);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByTestId("account-name").waitFor();
}

export async function chooseTenant(page, tenantId) {
  await page.getByTestId("tenant-switcher").selectOption(tenantId);
}

/** Open a page of the app by its path, the way a user does (client-side navigation after the first load). */
export async function open(page, path) {
  await page.evaluate((p) => { history.pushState(null, "", p); dispatchEvent(new PopStateEvent("popstate")); }, path);
  await page.locator("#page-title").first().waitFor();
  await page.waitForLoadState("networkidle").catch(() => {});
}

const seen = new Map();

/** axe-core on the current page: serious or critical violations fail the run. */
export async function checkA11y(page, name) {
  await page.addScriptTag({ content: AXE });
  const result = await page.evaluate(async () => {
    // eslint-disable-next-line no-undef
    const r = await axe.run(document, { resultTypes: ["violations"] });
    return r.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.slice(0, 3).map((n) => n.target.join(" ")) }));
  });
  const bad = result.filter((v) => v.impact === "serious" || v.impact === "critical");
  seen.set(name, result);
  if (bad.length) throw new Error(`accessibility (${name}): ${JSON.stringify(bad, null, 1)}`);
  return result;
}

export async function shot(page, name) {
  await page.screenshot({ path: join(OUT, `${name}.png`), fullPage: false });
}

/** axe + screenshot of a page, in the current theme. */
export async function visit(page, path, name) {
  await open(page, path);
  await checkA11y(page, name);
  await shot(page, name);
  log("page ok:", name);
}

export async function until(check, what, timeoutMs = 120_000, everyMs = 500) {
  const deadline = Date.now() + timeoutMs;
  let last;
  while (Date.now() < deadline) {
    try {
      last = await check();
      if (last) return last;
    } catch (e) {
      last = e;
    }
    await new Promise((r) => setTimeout(r, everyMs));
  }
  throw new Error(`not within ${timeoutMs / 1000} s: ${what} (last: ${last})`);
}

export function unique(prefix) {
  return `${prefix}-${Math.random().toString(36).slice(2, 8)}`;
}
