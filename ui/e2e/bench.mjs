// Measurements for bench/ui.py (which starts the platform and the busy job): prints one JSON line.
import { BASE, launch } from "./lib.mjs";

const token = process.env.AIGC_BENCH_TOKEN;
const tenant = process.env.AIGC_BENCH_TENANT;
const jobId = process.env.AIGC_BENCH_JOB;
const loads = Number(process.env.AIGC_BENCH_LOADS ?? 5);
const minutes = Number(process.env.AIGC_BENCH_MINUTES ?? 5);

const browser = await launch();
const signedIn = async () => {
  const context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
  await context.addInitScript(([t, x]) => {
    localStorage.setItem("aigc.token", t);
    localStorage.setItem("aigc.tenant", x);
    localStorage.setItem("aigc.lang", "en");
  }, [token, tenant]);
  return context;
};

// 1 and 2: cold loads of the dashboard (a new context each time: empty cache)
const loadsMs = [];
let scripts = [];
for (let i = 0; i < loads + 1; i++) {
  const context = await signedIn();
  const page = await context.newPage();
  const responses = [];
  page.on("response", (r) => { if (r.request().resourceType() === "script") responses.push(r); });
  await page.goto(`${BASE}/`);
  await page.waitForSelector('[data-testid="dashboard-stats"][data-ready="true"]');
  const ms = await page.evaluate(() => performance.now());
  if (i > 0) loadsMs.push(ms); // the first load warms the server, not the browser
  if (i === 1) {
    scripts = [];
    for (const r of responses) {
      const sizes = await r.request().sizes();
      scripts.push([new URL(r.url()).pathname.replace("/assets/", ""), sizes.responseBodySize / 1024]);
    }
  }
  await context.close();
}
loadsMs.sort((a, b) => a - b);
const initialJsKB = scripts.reduce((n, [, kb]) => n + kb, 0);

// 3: the fine-tuning page following the busy job
const context = await signedIn();
const page = await context.newPage();
const cdp = await context.newCDPSession(page);
await cdp.send("Performance.enable");
const heapMB = async () => {
  await cdp.send("HeapProfiler.collectGarbage").catch(() => {});
  const { metrics } = await cdp.send("Performance.getMetrics");
  return metrics.find((m) => m.name === "JSHeapUsedSize").value / 1024 / 1024;
};
await page.goto(`${BASE}/finetune/${jobId}`);
await page.waitForSelector('[role="log"]');
await page.evaluate(() => {
  const w = window;
  w.__frames = { count: 0, dropped: 0, long: 0, last: performance.now() };
  const tick = (now) => {
    const f = w.__frames;
    const gap = now - f.last;
    f.count += 1;
    if (gap > 1000 / 60 * 1.5) f.dropped += Math.round(gap / (1000 / 60)) - 1;
    if (gap > 50) f.long += 1;
    f.last = now;
    requestAnimationFrame(tick);
  };
  requestAnimationFrame(tick);
});
await page.waitForTimeout(10_000);
const heapStartMB = await heapMB();
const started = Date.now();
await page.waitForTimeout(Math.max(0, minutes * 60_000 - 10_000));
const seconds = (Date.now() - started + 10_000) / 1000;
const frames = await page.evaluate(() => window.__frames);
const heapEndMB = await heapMB();
const view = await page.evaluate(() => {
  const log = document.querySelector('[role="log"]');
  const charts = [...document.querySelectorAll("figure.chart")].map((f) => Number(f.getAttribute("data-points") ?? 0));
  return {
    linesKept: Number(log?.getAttribute("data-lines") ?? 0),
    dropped: Number(log?.getAttribute("data-dropped") ?? 0),
    chartPoints: Math.max(0, ...charts),
    domNodes: document.getElementsByTagName("*").length,
  };
});
const version = browser.version();
await browser.close();
console.log(JSON.stringify({
  browser: version,
  initialJsKB, scripts, loadsMs, interactiveMs: loadsMs[Math.floor(loadsMs.length / 2)],
  follow: {
    seconds, frames: frames.count, droppedFrames: frames.dropped, longFrames: frames.long, heapStartMB, heapEndMB,
    linesSeen: view.linesKept + view.dropped, linesKept: view.linesKept, chartPoints: view.chartPoints, domNodes: view.domNodes,
  },
}));
