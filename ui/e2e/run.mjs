// The admin UI's browser tests (tests/e2e/test_ui_browser.py runs this against a real `aigc-admin up`).
// Each flow is what the issue names: sign in, deploy and watch RUNNING live, a channel's key once, a malformed
// upload's line-numbered errors, a LoRA fine-tune's live log and chart, a streamed chat, tenant isolation;
// axe-core on every page, screenshots of every page (light, and some dark and Chinese).
import { api, BASE, chooseTenant, checkA11y, launch, log, open, shot, signIn, token, unique, until, visit } from "./lib.mjs";

const PASSWORD = process.env.AIGC_E2E_PASSWORD ?? "admin";
const MODEL_PATH = process.env.AIGC_E2E_MODEL_PATH;
if (!MODEL_PATH) throw new Error("AIGC_E2E_MODEL_PATH: the tiny model's folder");

// --- seed: a tenant with a maintainer, another tenant with a member (the isolation check) -------------------
const admin = await token("admin", PASSWORD);
const code = unique("ui");
const tenant = (await api(`mutation($c: String!) { createTenant(input: {name: "UI tenant", code: $c}) { tenant { id } errors { message } } }`,
  { c: code }, { token: admin })).createTenant.tenant.id;
const other = (await api(`mutation($c: String!) { createTenant(input: {name: "Other tenant", code: $c}) { tenant { id } errors { message } } }`,
  { c: unique("other") }, { token: admin })).createTenant.tenant.id;
const outsider = unique("outsider");
const outsiderPassword = "outsider-pass-1234";
const account = await api(`mutation($i: CreateAccountInput!) { createAccount(input: $i) { account { id } errors { message } } }`,
  { i: { username: outsider, password: outsiderPassword, email: `${outsider}@example.com` } }, { token: admin });
await api(`mutation($i: SetMembershipInput!) { setTenantMembership(input: $i) { tenant { id } errors { message } } }`,
  { i: { tenantId: other, accountId: account.createAccount.account.id, role: "MEMBER" } }, { token: admin });

const browser = await launch();
const context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
const page = await context.newPage();
const pageErrors = [];
page.on("pageerror", (e) => pageErrors.push(String(e)));
const failures = [];
async function step(name, fn) {
  const started = Date.now();
  try {
    await fn();
    log(`✓ ${name} (${((Date.now() - started) / 1000).toFixed(1)} s)`);
  } catch (e) {
    failures.push(`${name}: ${e?.stack ?? e}`);
    log(`✗ ${name}: ${e?.message ?? e}`);
    await shot(page, `failed-${name.replace(/\W+/g, "-")}`).catch(() => {});
  }
}

const modelName = unique("tiny-ui");
const channelName = unique("chan-ui");

await step("sign in", async () => {
  await page.goto(BASE);
  await page.evaluate(() => localStorage.setItem("aigc.lang", "en"));
  await page.reload();
  await checkA11y(page, "login");
  await shot(page, "login");
  await signIn(page, "admin", PASSWORD);
  await chooseTenant(page, tenant);
  await page.locator('[data-testid="dashboard-stats"][data-ready="true"]').waitFor();
  await checkA11y(page, "dashboard");
  await shot(page, "dashboard");
});

await step("register the tiny model and deploy it: RUNNING without a reload", async () => {
  await open(page, "/models");
  await page.getByRole("button", { name: "Register model" }).click();
  const form = page.locator('form[aria-label="Register model"]');
  await form.locator('[name="name"]').fill(modelName);
  await form.locator('[name="modelPath"]').fill(MODEL_PATH);
  await checkA11y(page, "models-register");
  await shot(page, "models-register");
  await form.getByRole("button", { name: "Save" }).click();
  const row = page.locator("tr", { hasText: modelName });
  await row.waitFor();
  await row.getByRole("button", { name: "Deploy" }).click();
  const deploy = page.getByRole("form", { name: "Deploy model" });
  await checkA11y(page, "models-deploy");
  await shot(page, "models-deploy");
  await deploy.getByRole("button", { name: "Deploy" }).click();
  const navigations = [];
  page.on("framenavigated", (f) => { if (f === page.mainFrame()) navigations.push(f.url()); });
  await row.locator('[data-testid="model-deployment-status"] [data-status="RUNNING"]').waitFor({ timeout: 180_000 });
  if (navigations.length) throw new Error(`the page navigated: ${navigations}`);
  await checkA11y(page, "models");
  await shot(page, "models");
  await row.locator('[data-testid="model-deployment-status"] a').first().click();
  await page.locator('[data-testid="deployment-status"] [data-status="RUNNING"]').waitFor();
  await until(async () => Number(await page.locator('[role="log"]').first().getAttribute("data-lines")) > 0,
    "the deployment's log tail shows lines", 60_000);
  await checkA11y(page, "deployment-detail");
  await shot(page, "deployment-detail");
});

await visit(page, "/deployments", "deployments").catch((e) => failures.push(`deployments page: ${e}`));

// further flows are appended below (channels, files, fine-tuning, playground, isolation)

await step("create a channel for the model and read its key once", async () => {
  await open(page, "/channels");
  await page.getByRole("button", { name: "Create channel" }).click();
  await page.locator('[name="alias"]').fill(channelName);
  await page.getByRole("checkbox", { name: modelName }).check();
  await checkA11y(page, "channels-create");
  await shot(page, "channels-create");
  await page.getByRole("button", { name: "Create", exact: true }).click();
  const key = (await page.getByTestId("secret-key").textContent())?.trim() ?? "";
  if (!key.startsWith("sk-")) throw new Error(`the key shown is not a key: ${key}`);
  await shot(page, "channels-key-once");
  await page.getByRole("button", { name: "Done" }).click();
  if (await page.getByTestId("secret-key").count()) throw new Error("the key is still shown after Done");
  const html = await page.content();
  if (html.includes(key)) throw new Error("the key is still in the page after Done");
  // it works: the gateway answers with it
  const r = await fetch(`${BASE}/v1/chat/completions`, {
    method: "POST", headers: { Authorization: `Bearer ${key}`, "Content-Type": "application/json" },
    body: JSON.stringify({ model: modelName, max_tokens: 4, messages: [{ role: "user", content: "Hi" }] }),
  });
  if (r.status !== 200) throw new Error(`the new key does not work: ${r.status} ${await r.text()}`);
  await page.getByRole("link", { name: channelName }).click();
  await page.getByTestId("channel-detail").waitFor();
  await checkA11y(page, "channel-detail");
  await shot(page, "channel-detail");
});

await step("chat in the playground, streamed, two models side by side", async () => {
  await open(page, "/playground");
  await page.locator('select[name="channelId"]').selectOption({ label: channelName }).catch(async () => {
    const options = await page.locator('select[name="channelId"] option').allTextContents();
    const match = options.find((o) => o.includes(channelName));
    if (!match) throw new Error(`no channel option ${channelName} in ${options}`);
    await page.locator('select[name="channelId"]').selectOption({ label: match });
  });
  await page.getByLabel("Compare two models").check();
  await page.getByLabel("Model A", { exact: true }).selectOption(modelName);
  await page.getByLabel("Model B", { exact: true }).selectOption(modelName);
  await page.locator('[name="maxTokens"]').fill("40"); // the tiny model's answers are noise: keep them short
  await page.getByLabel("Message", { exact: true }).fill("Hello there");
  // count the updates of the answer while it streams: more than one means it arrived in pieces
  await page.evaluate(() => {
    const w = window;
    w.__updates = 0;
    new MutationObserver(() => { w.__updates += 1; }).observe(document.querySelector('[data-testid="chat-a"]'),
      { subtree: true, childList: true, characterData: true });
  });
  await page.getByRole("button", { name: "Send" }).click();
  for (const column of ["chat-a", "chat-b"]) {
    const answer = page.locator(`[data-testid="${column}"] .msg.assistant`).last();
    await answer.and(page.locator('[data-streaming="false"]')).waitFor({ timeout: 60_000 });
    const errors = await answer.locator(".error").count();
    if (errors) throw new Error(`${column}: ${await answer.locator(".error").textContent()}`);
    const textContent = (await answer.textContent()) ?? "";
    if (!textContent.trim()) throw new Error(`${column}: empty answer`);
  }
  const updates = await page.evaluate(() => window.__updates);
  if (updates < 3) throw new Error(`the answer did not stream (${updates} updates)`);
  await checkA11y(page, "playground");
  await shot(page, "playground");
});

const malformed = [
  JSON.stringify({ messages: [{ role: "user", content: "Hi" }, { role: "assistant", content: "Hello" }] }),
  "{ this is not json",
  JSON.stringify({ messages: [{ role: "user", content: "only a question" }] }),
].join("\n");

await step("upload a malformed file: the errors are shown next to their lines", async () => {
  await open(page, "/files");
  await page.locator('input[type=file][name=file]').setInputFiles({ name: "bad.jsonl", mimeType: "application/jsonl", buffer: Buffer.from(malformed) });
  await page.locator('select[name=purpose]').selectOption("FINE_TUNE");
  await page.getByRole("button", { name: "Upload", exact: true }).click();
  const second = page.locator('.line-errors li[data-line="2"]');
  await second.waitFor();
  const text = (await second.textContent()) ?? "";
  if (!text.includes("Line 2") || !text.includes("{ this is not json")) throw new Error(`line 2 shows: ${text}`);
  if (await page.locator('.line-errors li[data-line="1"]').count()) throw new Error("a good line is shown as bad");
  await checkA11y(page, "files-errors");
  await shot(page, "files-errors");
});

let jobPath = "";
await step("start a LoRA fine-tune: live log lines and chart points", async () => {
  const good = Array.from({ length: 120 }, (_, i) => JSON.stringify({ messages: [
    { role: "user", content: `What is ${i} plus ${i}?` }, { role: "assistant", content: `${i} plus ${i} is ${2 * i}.` }] })).join("\n");
  await open(page, "/files");
  await page.locator('input[type=file][name=file]').setInputFiles({ name: "train.jsonl", mimeType: "application/jsonl", buffer: Buffer.from(good) });
  await page.locator('select[name=purpose]').selectOption("FINE_TUNE");
  await page.getByRole("button", { name: "Upload", exact: true }).click();
  await page.locator("tr", { hasText: "train.jsonl" }).first().waitFor();
  await open(page, "/finetune");
  await page.getByRole("button", { name: "New fine-tuning job" }).click();
  await page.locator("select[name=baseModelId]").selectOption({ label: modelName });
  const fileOption = page.locator("select[name=fileId] option", { hasText: "train.jsonl" }).first();
  await page.locator("select[name=fileId]").selectOption(await fileOption.getAttribute("value"));
  await page.locator("input[name=epochs]").fill("5");
  await page.locator("input[name=learningRate]").fill("0.001");
  await page.locator("input[name=modelMaxLength]").fill("256");
  if (!(await page.locator("input[name=lora]").isChecked())) throw new Error("LoRA is not the default");
  await checkA11y(page, "finetune-new");
  await shot(page, "finetune-new");
  await page.getByRole("button", { name: "Start training" }).click();
  await page.waitForURL(/\/finetune\/\d+$/);
  jobPath = new URL(page.url()).pathname;
  const logView = page.locator('[role=log][aria-label="Training log"]');
  const lossChart = page.locator("figure.chart").first();
  // live: while the job runs, the log and the chart grow on the page (seen at least twice each, growing)
  const seen = { lines: new Set(), points: new Set() };
  await until(async () => {
    const done = await page.locator(".page-head [data-status=SUCCEEDED]").count();
    if (!done) {
      seen.lines.add(Number(await logView.getAttribute("data-lines")));
      seen.points.add(Number(await lossChart.getAttribute("data-points")));
    }
    return done > 0;
  }, "the job SUCCEEDED", 300_000, 100);
  const grew = (values) => [...values].filter((n) => n > 0).length >= 2;
  log(`while RUNNING: log sizes ${[...seen.lines].join(",")}; chart sizes ${[...seen.points].join(",")}`);
  if (!grew(seen.lines) || !grew(seen.points)) {
    throw new Error(`not live: log lines seen ${[...seen.lines]}, chart points seen ${[...seen.points]}`);
  }
  await checkA11y(page, "finetune-job");
  await shot(page, "finetune-job");
});

// --- every page: axe and a screenshot -------------------------------------------------------------------------
const pages = [
  ["/", "dashboard-live"], ["/models", "models-list"], ["/deployments", "deployments-list"], ["/files", "files"],
  ["/finetune", "finetune"], ["/datasets", "datasets"], ["/evaluations", "evaluations"], ["/assistants", "assistants"],
  ["/tools", "tools"], ["/channels", "channels"], ["/playground", "playground-empty"], ["/audit", "audit"],
  ["/system/tenants", "system-tenants"], ["/system/accounts", "system-accounts"], ["/system/dicts", "system-dicts"],
  ["/system/templates", "system-templates"],
];
for (const [path, name] of pages) await step(`page ${path}`, () => visit(page, path, name));
await step("dark theme and Chinese", async () => {
  await page.getByRole("button", { name: "Dark theme" }).click();
  for (const [path, name] of [["/", "dashboard"], ["/models", "models"], ...(jobPath ? [[jobPath, "finetune-job"]] : [])]) {
    await visit(page, path, `dark-${name}`);
  }
  await page.getByLabel("Language").selectOption("zh");
  await page.getByRole("link", { name: "模型", exact: true }).waitFor();
  for (const [path, name] of [["/", "dashboard"], ["/channels", "channels"], ["/system/tenants", "tenants"]]) {
    await visit(page, path, `zh-dark-${name}`);
  }
  await page.getByLabel("语言").selectOption("en");
  await page.getByRole("button", { name: "Light theme" }).click();
});

await step("GraphiQL is served from the platform, signed in as the UI's user", async () => {
  const external = [];
  const gi = await context.newPage();
  gi.on("request", (r) => { if (!r.url().startsWith(BASE) && !r.url().startsWith("data:")) external.push(r.url()); });
  await gi.goto(`${BASE}/graphql`);
  await gi.locator(".graphiql-container").waitFor();
  await shot(gi, "graphiql");
  if (external.length) throw new Error(`GraphiQL asked other hosts: ${external}`);
  const me = await gi.evaluate(async () => {
    const headers = { "Content-Type": "application/json", Authorization: `Bearer ${localStorage.getItem("aigc.token")}` };
    const r = await fetch("/graphql", { method: "POST", headers, body: JSON.stringify({ query: "{ me { account { username } } }" }) });
    return r.json();
  });
  if (me.data?.me.account.username !== "admin") throw new Error(`GraphiQL's token: ${JSON.stringify(me)}`);
  await gi.close();
});

await step("a member of another tenant sees none of it", async () => {
  const ctx2 = await browser.newContext({ viewport: { width: 1400, height: 900 } });
  const p2 = await ctx2.newPage();
  await signIn(p2, outsider, outsiderPassword);
  const options = await p2.getByTestId("tenant-switcher").locator("option").allTextContents();
  if (options.some((o) => o.includes("UI tenant"))) throw new Error(`the outsider can pick the UI tenant: ${options}`);
  for (const path of ["/", "/models", "/deployments", "/channels", "/finetune", "/files", "/playground"]) {
    await open(p2, path);
    await p2.waitForTimeout(300);
    const body = (await p2.locator("main").textContent()) ?? "";
    for (const secret of [modelName, channelName, "train.jsonl", "bad.jsonl"]) {
      if (body.includes(secret)) throw new Error(`${path} shows ${secret} to a member of another tenant`);
    }
  }
  if (await p2.getByRole("link", { name: "Tenants" }).count()) throw new Error("system pages offered to a member");
  // and the API refuses the tenant outright, whatever the UI sends
  const outsiderToken = await token(outsider, outsiderPassword);
  const refused = await fetch(`${BASE}/graphql`, { method: "POST", headers: { "Content-Type": "application/json",
    Authorization: `Bearer ${outsiderToken}`, "X-Tenant-Id": tenant }, body: JSON.stringify({ query: "{ channels { items { id } } }" }) });
  const refusedBody = await refused.json();
  if (refusedBody.errors?.[0]?.extensions?.code !== "FORBIDDEN") throw new Error(`not refused: ${JSON.stringify(refusedBody)}`);
  await shot(p2, "member-other-tenant");
  await ctx2.close();
});

await browser.close();
if (pageErrors.length) failures.push(`errors in the page: ${pageErrors.join("\n")}`);
if (failures.length) {
  console.error(`${failures.length} failure(s):\n${failures.join("\n\n")}`);
  process.exit(1);
}
log("all flows passed");
