// GraphiQL at GET /graphql in headless Chromium, in this closed network
// where unpkg.com (GraphiQL's CDN) is unreachable. Usage:
//   node graphql_graphiql.mjs http://127.0.0.1:PORT
// 1. The CDN hangs (the worst case: its <script> tags block the parser):
//    within 10 s the page says it could not load its scripts instead of
//    "Loading...". 2. The CDN refuses: the same. 3. The CDN answers with
//    stand-ins for React and GraphiQL that record what the page hands to
//    GraphiQL.createFetcher: the Authorization header (the server runs with
//    --dev-auth) is there, and a fetch with it is accepted by /graphql.
// Exits non-zero, saying why, on any failure.
import { launch } from "./browser.mjs";

const base = process.argv[2];
if (!base) throw new Error("usage: node graphql_graphiql.mjs <base-url>");
const MISSING = "GraphiQL could not load its scripts from unpkg.com";

const browser = await launch();

async function page(cdn) {
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.route(/^https:\/\/(unpkg\.com|graphql\.org)\//, cdn);
  // Not waiting for "load": with a hanging CDN it never comes.
  await page.goto(`${base}/graphql`, { waitUntil: "commit" });
  return page;
}

async function saysMissing(name, cdn) {
  const p = await page(cdn);
  await p.waitForFunction(
    (text) => document.documentElement.innerText.includes(text),
    MISSING,
    { timeout: 10000, polling: 250 },
  );
  console.log(`${name}: the page says its CDN scripts are missing`);
  await p.context().close();
}

try {
  await saysMissing("hanging CDN", () => {});
  await saysMissing("refusing CDN", (route) => route.abort("connectionrefused"));

  const stand_ins = `
    window.React = { createElement: () => null };
    window.ReactDOM = { createRoot: () => ({ render() {} }) };
    window.GraphiQL = { createFetcher: (opts) => { window.fetcherOpts = opts; return () => {}; } };`;
  const p = await page((route) =>
    route.fulfill({ status: 200, contentType: "application/javascript", body: stand_ins }),
  );
  await p.waitForFunction(() => window.fetcherOpts !== undefined, null, { timeout: 10000, polling: 250 });
  const opts = await p.evaluate(() => ({
    headers: window.fetcherOpts.headers,
    ws: window.fetcherOpts.wsConnectionParams,
  }));
  const auth = opts.headers && opts.headers.Authorization;
  if (auth !== "Bearer dev:guest") throw new Error(`Authorization: ${JSON.stringify(opts)}`);
  if (!opts.ws || opts.ws.authorization !== auth) throw new Error(`ws params: ${JSON.stringify(opts)}`);
  // The header works: a query needing a viewer is answered without UNAUTHENTICATED.
  const answer = await p.evaluate(async (auth) => {
    const res = await fetch("/graphql", {
      method: "POST",
      headers: { "content-type": "application/json", authorization: auth },
      body: JSON.stringify({ query: '{ room(id: "nowhere") { id } }' }),
    });
    return res.json();
  }, auth);
  if (answer.errors || answer.data.room !== null) throw new Error(`with the header: ${JSON.stringify(answer)}`);
  // The watchdog stays quiet when the scripts loaded.
  await p.waitForTimeout(6000);
  if ((await p.content()).includes(`<div id="graphiql">${MISSING}`)) throw new Error("watchdog fired although GraphiQL loaded");
  console.log("loaded CDN: GraphiQL gets Authorization: Bearer dev:guest, and it works");
} finally {
  await browser.close();
}
