// parlor.js's heartbeat in a real browser: headless Chromium (Debian's
// package) driven by playwright-core. Run by `cargo test -p parlor-tests
// --test web_chat_browser`, which starts the server with short ping
// settings: node liveness.mjs <server-base>
//
// Ann's page reaches the server through a TCP forwarder that this script
// can freeze — no byte either way, no FIN, no RST, as when a phone's network
// vanishes — and that Chromium's own WebSocket would not notice for minutes.
// Checks: an idle client that hears its pings answered stays online; once
// frozen, it takes the server as lost within ping interval + timeout (its
// status turns to reconnecting); when the network is back it resumes its
// room and holds what bob sent meanwhile, once each, in order.

import net from "node:net";
import { launch, step } from "./browser.mjs";

const [base] = process.argv.slice(2);
if (!base) throw new Error("usage: node liveness.mjs <server-base>");

/** A TCP hop to `target` that can be frozen, then thawed. */
function forwarder(target) {
  const { hostname, port } = new URL(target);
  const pairs = new Set();
  let frozen = false;
  const server = net.createServer((client) => {
    const upstream = net.connect(Number(port), hostname);
    const pair = { client, upstream, frozen: false };
    pairs.add(pair);
    if (frozen) stop(pair);
    else {
      client.pipe(upstream);
      upstream.pipe(client);
    }
    for (const [from, to] of [[client, upstream], [upstream, client]]) {
      from.on("error", () => {});
      // A frozen hop passes nothing on, not even a close.
      from.on("close", () => {
        pairs.delete(pair);
        if (!pair.frozen) to.destroy();
      });
    }
  });
  return {
    listen: () => new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve(server.address().port))),
    /** Stops every connection dead, open ones and new ones. */
    freeze() {
      frozen = true;
      for (const pair of pairs) stop(pair);
    },
    /** The network is back: new connections pass; the frozen ones are
     * gone for good, as after a real outage. */
    thaw() {
      frozen = false;
      for (const pair of [...pairs].filter((p) => p.frozen)) {
        pair.client.destroy();
        pair.upstream.destroy();
      }
    },
    close: () => server.close(),
  };
}

function stop(pair) {
  pair.frozen = true;
  pair.client.unpipe(pair.upstream);
  pair.upstream.unpipe(pair.client);
  pair.client.pause();
  pair.upstream.pause();
}

const browser = await launch();
const hop = forwarder(base);
const hopBase = `http://127.0.0.1:${await hop.listen()}`;

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function assert(ok, message) {
  if (!ok) throw new Error(message);
}

/** A page at `origin` with a ParlorClient as `user` in `window.client`, joined to `room`. */
async function joined(origin, user, room) {
  const context = await browser.newContext();
  const page = await context.newPage();
  const seen = { pings: 0 };
  page.on("websocket", (ws) =>
    ws.on("framesent", ({ payload }) => {
      if (JSON.parse(String(payload)).type === "ping") seen.pings += 1;
    }),
  );
  page.on("pageerror", (e) => console.log(`[${user}] page error: ${e.message}`));
  page.on("console", (m) => m.type() === "warning" && console.log(`[${user}] ${m.text()}`));
  await page.goto(`${origin}/`);
  await page.evaluate(
    async ([user, room]) => {
      const { ParlorClient } = await import("/web-chat/parlor.js");
      const client = new ParlorClient({ token: `dev:${user}` });
      window.client = client;
      window.statuses = [];
      client.addEventListener("status", () => window.statuses.push([Date.now(), client.status]));
      await client.connect();
      window.room = await client.join(room, { create: { capacity: 5 } });
      window.statuses = []; // from here on, any change is news
    },
    [user, room],
  );
  return { context, page, seen };
}

try {
  step("ann joins through the forwarder, bob directly");
  const ann = await joined(hopBase, "ann", "alive");
  const bob = await joined(base, "bob", "alive");
  const { interval, timeout } = await ann.page.evaluate(() => ({
    interval: window.client.pingIntervalMs,
    timeout: window.client.pingTimeoutMs,
  }));
  console.log(`  heartbeat from welcome: ping every ${interval} ms, lost after ${interval + timeout} ms of silence`);

  step("ann idles: her pings are answered and she stays online");
  const before = ann.seen.pings;
  await sleep(3 * interval + 500);
  const pings = ann.seen.pings - before;
  const idle = await ann.page.evaluate(() => ({ status: window.client.status, statuses: window.statuses }));
  assert(idle.status === "online" && idle.statuses.length === 0, `an idle client must stay online: ${JSON.stringify(idle)}`);
  assert(pings >= 2, `ann sent ${pings} pings in ${3 * interval} ms`);

  step("ann's network freezes: she takes the server as lost");
  const frozenAt = Date.now();
  hop.freeze();
  // Bound: the heartbeat's own (interval + timeout, then its next tick), plus slack for a slow machine.
  const bound = interval + timeout + 10_000;
  await ann.page.waitForFunction(() => window.client.status === "reconnecting", null, { timeout: bound, polling: 100 });
  const noticedAfter = Date.now() - frozenAt;
  console.log(`  noticed after ${noticedAfter} ms (silence allowed: ${interval + timeout} ms)`);

  step("bob talks meanwhile; the network comes back; ann resumes and holds it all once");
  const said = ["while you were away 1", "while you were away 2", "while you were away 3"];
  await bob.page.evaluate(async (said) => {
    for (const body of said) window.room.send(body);
    await new Promise((resolve) => {
      const done = () => window.room.outbox.length === 0 && resolve();
      window.room.addEventListener("change", done);
      done();
    });
  }, said);
  hop.thaw();
  await ann.page.waitForFunction(
    (said) => {
      const bodies = window.room.entries.map((e) => e.body);
      return window.client.status === "online" && window.room.status === "joined" && said.every((b) => bodies.includes(b));
    },
    said,
    // A reconnect attempt made during the freeze is stuck until the heartbeat
    // gives up on it too; then backoff (at most 10 s).
    { timeout: 2 * (interval + timeout) + 15_000, polling: 100 },
  );
  const seqs = await ann.page.evaluate(() => window.room.entries.map((e) => [e.seq, e.body]));
  for (let i = 1; i < seqs.length; i++) assert(seqs[i][0] === seqs[i - 1][0] + 1, `gap or repeat: ${JSON.stringify(seqs)}`);
  const got = seqs.map(([, body]) => body).filter((b) => said.includes(b));
  assert(JSON.stringify(got) === JSON.stringify(said), `ann holds ${JSON.stringify(got)}`);

  console.log(`liveness: ok — lost server noticed in ${noticedAfter} ms, room resumed without gap`);
} finally {
  hop.close();
  await browser.close();
}
