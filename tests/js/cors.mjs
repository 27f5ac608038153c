// Origins and CORS in a real browser: headless Chromium (Debian's package)
// driven by playwright-core. Run by `cargo test -p parlor-tests --test
// web_chat_browser`, which starts a server with `--allowed-origin <page>`,
// one without, and a tiny static site on another origin (the page):
//   node cors.mjs <server-base> <server-without-the-origin-base> <page-origin>
// The servers are reached as http://127.0.0.1:P; the page comes from
// http://localhost:Q — another origin, so every call is a CORS call.
//
// Checks: a fetch with an Authorization header (which forces a preflight)
// from the page to /v1 and /graphql succeeds where the origin is listed and
// is refused by the browser where it is not; parlor.js from the page
// connects, joins and sends across origins; join() rejects, with the reason,
// when its HTTP call fails (a full room; a call that cannot reach the
// server); the bundled chat at / still connects with --allowed-origin set,
// and shows why a join failed.

import { launch, step } from "./browser.mjs";

const [base, closedBase, pageOrigin] = process.argv.slice(2);
if (!base || !closedBase || !pageOrigin) {
  throw new Error("usage: node cors.mjs <server-base> <closed-server-base> <page-origin>");
}

// The static site listens on 127.0.0.1 only; the page's origin keeps
// the name `localhost`.
const browser = await launch(["--host-resolver-rules=MAP localhost 127.0.0.1"]);

function assert(ok, message) {
  if (!ok) throw new Error(message);
}

/** In the page: a promise's outcome within `ms`, or "never settled". */
const SETTLES = `
  window.settles = (promise, ms) => Promise.race([
    promise.then((value) => ({ resolved: true, value }), (err) => ({ rejected: true, code: err?.code, name: err?.name, text: err?.text ?? String(err) })),
    new Promise((resolve) => setTimeout(() => resolve({ never: true }), ms)),
  ]);
`;

try {
  const context = await browser.newContext();
  const page = await context.newPage();
  page.on("pageerror", (e) => console.log(`[page] page error: ${e.message}`));
  page.on("console", (m) => m.type() === "warning" && console.log(`[page] ${m.text()}`));
  await page.goto(`${pageOrigin}/`);
  await page.addScriptTag({ content: SETTLES });
  assert((await page.evaluate(() => location.origin)) === pageOrigin, "the page is on its own origin");

  step("a fetch with Authorization from another origin: preflight, then the call");
  const reserve = (server, room) =>
    page.evaluate(
      async ([server, room]) => {
        try {
          const response = await fetch(`${server}/v1/rooms/${room}/reservations`, {
            method: "POST",
            headers: { authorization: "Bearer dev:ann", "content-type": "application/json" },
            body: JSON.stringify({ create: { capacity: 2 } }),
          });
          return { status: response.status, body: await response.json() };
        } catch (err) {
          return { failed: err.name };
        }
      },
      [server, room],
    );
  const allowed = await reserve(base, "x");
  assert(allowed.status === 201 && allowed.body.ticket, `listed origin: ${JSON.stringify(allowed)}`);
  const refused = await reserve(closedBase, "x");
  assert(refused.failed === "TypeError", `unlisted origin: the browser must refuse: ${JSON.stringify(refused)}`);
  console.log(`  listed: ${allowed.status}; unlisted: ${refused.failed}`);

  step("GraphQL over HTTP from another origin");
  const graphql = await page.evaluate(async (server) => {
    const response = await fetch(`${server}/graphql`, {
      method: "POST",
      headers: { authorization: "Bearer dev:ann", "content-type": "application/json", accept: "application/json" },
      body: JSON.stringify({ query: "{ room(id: \"nowhere\") { id } }" }),
    });
    return { status: response.status, body: await response.json() };
  }, base);
  assert(graphql.status === 200 && "data" in graphql.body, `graphql: ${JSON.stringify(graphql)}`);

  step("parlor.js from another origin: connect, join, send");
  const talk = await page.evaluate(async (server) => {
    const { ParlorClient } = await import("/parlor.js");
    const ann = new ParlorClient({ token: "dev:ann", baseUrl: server });
    window.ann = ann;
    await ann.connect();
    const room = await ann.join("cross", { create: { capacity: 1, title: "Cross" } });
    room.send("hello from another origin");
    await new Promise((resolve) => {
      const seen = () => room.entries.some((e) => e.body === "hello from another origin") && resolve();
      room.addEventListener("change", seen);
      seen();
    });
    return { status: room.status, entries: room.entries.map((e) => e.kind) };
  }, base);
  assert(talk.status === "joined", `cross-origin join: ${JSON.stringify(talk)}`);

  step("join() rejects when its HTTP call fails: a full room");
  const full = await page.evaluate(async (server) => {
    const { ParlorClient } = await import("/parlor.js");
    const bob = new ParlorClient({ token: "dev:bob", baseUrl: server });
    await bob.connect();
    return window.settles(bob.join("cross"), 10_000);
  }, base);
  assert(full.rejected && full.code === "ROOM_FULL", `full room: ${JSON.stringify(full)}`);
  console.log(`  rejected: ${full.code} — ${full.text}`);

  step("join() rejects when its HTTP call cannot reach the server");
  await page.route(`${base}/v1/rooms/*/reservations`, (route) => route.abort("connectionrefused"));
  const unreachable = await page.evaluate(() => window.settles(window.ann.join("elsewhere", { create: { capacity: 3 } }), 10_000));
  assert(unreachable.rejected && unreachable.code === "NETWORK", `unreachable: ${JSON.stringify(unreachable)}`);
  assert(!(await page.evaluate(() => window.ann.rooms.has("elsewhere"))), "a failed first join leaves no room behind");
  console.log(`  rejected: ${unreachable.code} — ${unreachable.text}`);
  await page.unroute(`${base}/v1/rooms/*/reservations`);
  await context.close();

  step("the bundled chat at / connects with --allowed-origin set");
  const chat = await browser.newContext();
  const own = await chat.newPage();
  await own.goto(`${base}/`);
  await own.fill("[data-testid=user]", "carol");
  await own.click("[data-testid=sign-in]");
  await own.waitForSelector(`[data-testid=status][data-status="online"]`, { timeout: 15_000 });

  step("the page shows why a join failed");
  await own.route("**/v1/rooms/*/reservations", (route) => route.abort("connectionrefused"));
  await own.fill("[data-testid=room-id]", "cut-off");
  await own.click("[data-testid=join]");
  const why = await own.waitForSelector("[data-testid=join-error]:text('cannot be reached')", { timeout: 10_000 });
  console.log(`  carol reads: ${await why.textContent()}`);
  assert(await own.isEnabled("[data-testid=join]"), "the join button is usable again");
  await own.unroute("**/v1/rooms/*/reservations");
  await own.fill("[data-testid=room-id]", "cross");
  await own.click("[data-testid=join]");
  await own.waitForSelector("[data-testid=join-error]:text('full')", { timeout: 10_000 });
  await chat.close();

  console.log("cors: ok");
} finally {
  await browser.close();
}
