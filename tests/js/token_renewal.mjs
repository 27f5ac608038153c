// parlor.js's token renewal in a real browser: headless Chromium (Debian's
// package) driven by playwright-core. Run by `cargo test -p parlor-tests
// --test web_chat_browser`, which starts the server (JWTs signed with
// `--jwt-secret`, a reconnect grace longer than this script):
// node token_renewal.mjs <server-base> <jwt-secret>
//
// The tokens are signed here, when the page asks, so that a token "for 5 s"
// really has 5 s left when the page gets it. Checks:
// - with `getToken`, a client whose token expires in 5 s renews it in place
//   (a `refresh` frame): one socket, never closed, the room joined past the
//   first `exp`, and a send after it acked;
// - without it, the server closes at `exp` with 4401; the page hears
//   `token-expired` (not signed out), waits, and `refresh(fresh)` reconnects
//   and resumes the room: no `leave` and a single `join` for that user in
//   the history, and a send after it acked;
// - a refresh the server refuses rejects with UNAUTHENTICATED and leaves
//   the token and its expiry as they were;
// - a token refused at `hello` (4401 before `welcome`) still signs out,
//   for good.

import { createHmac } from "node:crypto";
import { launch, step } from "./browser.mjs";

const [base, secret] = process.argv.slice(2);
if (!base || !secret) throw new Error("usage: node token_renewal.mjs <server-base> <jwt-secret>");

const browser = await launch();

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function assert(ok, message) {
  if (!ok) throw new Error(message);
}

/** An HS256 JWT (RFC 7519) for `user` that expires `ms` from now. */
function jwt(user, ms) {
  const part = (json) => Buffer.from(JSON.stringify(json)).toString("base64url");
  const body = `${part({ alg: "HS256", typ: "JWT" })}.${part({ sub: user, exp: (Date.now() + ms) / 1000 })}`;
  return `${body}.${createHmac("sha256", secret).update(body).digest("base64url")}`;
}

/** A page at the server's origin with `window.client` as `user` (a token
 * good for `ms`), joined to `room`; with `renew`, its getToken() gives a
 * fresh 60 s token. Counts the page's sockets, their closes and frames. */
async function joined(user, room, ms, { renew }) {
  const context = await browser.newContext();
  const page = await context.newPage();
  const seen = { sockets: 0, closes: 0, refreshes: 0 };
  page.on("websocket", (ws) => {
    seen.sockets += 1;
    ws.on("close", () => (seen.closes += 1));
    ws.on("framesent", ({ payload }) => {
      if (JSON.parse(String(payload)).type === "refresh") seen.refreshes += 1;
    });
  });
  page.on("pageerror", (e) => console.log(`[${user}] page error: ${e.message}`));
  page.on("console", (m) => m.type() === "warning" && console.log(`[${user}] ${m.text()}`));
  await page.exposeFunction("freshToken", () => jwt(user, 60_000));
  await page.goto(`${base}/`);
  await page.evaluate(
    async ([token, room, renew]) => {
      const { ParlorClient } = await import("/web-chat/parlor.js");
      window.asked = 0;
      const getToken = renew
        ? async () => {
            window.asked += 1;
            return window.freshToken();
          }
        : null;
      const client = new ParlorClient({ token, getToken });
      window.client = client;
      window.statuses = [];
      window.expired = [];
      client.addEventListener("status", () => window.statuses.push(client.status));
      client.addEventListener("token-expired", () => window.expired.push(Date.now()));
      await client.connect();
      window.room = await client.join(room, { create: { capacity: 5 } });
      window.statuses = []; // from here on, any change is news
    },
    [jwt(user, ms), room, renew],
  );
  return { context, page, seen };
}

/** Sends `body` from the page and resolves once it is acked and in the log. */
const sendAndSettle = (page, body) =>
  page.evaluate(
    (body) =>
      new Promise((resolve, reject) => {
        const room = window.room;
        const clientId = room.send(body);
        const check = () => {
          const item = room.outbox.find((m) => m.clientId === clientId);
          if (item?.status === "failed") reject(new Error(`send failed: ${item.error?.code}`));
          else if (!item && room.entries.some((e) => e.client_id === clientId)) resolve();
        };
        room.addEventListener("change", check);
        check();
      }),
    body,
  );

const SHORT_MS = 5_000;

try {
  step("rita connects with a token good for 5 s and a getToken; she renews in place");
  const rita = await joined("rita", "renewing", SHORT_MS, { renew: true });
  const firstExp = await rita.page.evaluate(() => window.client.expiresAt);
  assert(
    firstExp !== null && Math.abs(firstExp - Date.now() - SHORT_MS) < SHORT_MS,
    `welcome's expires_at should be about 5 s away: ${firstExp - Date.now()} ms`,
  );
  // Past the first exp, by a margin for a slow machine.
  await sleep(Math.max(0, firstExp - Date.now()) + 2_000);
  const after = await rita.page.evaluate(() => ({
    status: window.client.status,
    statuses: window.statuses,
    room: window.room.status,
    asked: window.asked,
    expiresAt: window.client.expiresAt,
    expired: window.expired.length,
  }));
  assert(after.status === "online" && after.statuses.length === 0, `rita must stay online: ${JSON.stringify(after)}`);
  assert(after.room === "joined", `rita's room must stay joined: ${after.room}`);
  assert(after.asked >= 1 && rita.seen.refreshes >= 1, `no renewal: ${JSON.stringify(after)}, ${JSON.stringify(rita.seen)}`);
  assert(after.expiresAt > firstExp + 30_000, `the expiry was not moved on: ${after.expiresAt - firstExp} ms later`);
  assert(after.expired === 0, "token-expired fired for a renewed token");
  assert(rita.seen.sockets === 1 && rita.seen.closes === 0, `rita reconnected: ${JSON.stringify(rita.seen)}`);
  await sendAndSettle(rita.page, "said after the first exp");
  assert(rita.seen.sockets === 1, `rita reconnected to send: ${JSON.stringify(rita.seen)}`);
  console.log(`  renewed ${after.asked} time(s) on one socket; expiry moved ${after.expiresAt - firstExp} ms on`);

  step("tess connects with a token good for 5 s and no getToken");
  const tess = await joined("tess", "expiring", SHORT_MS, { renew: false });
  const tessExp = await tess.page.evaluate(() => window.client.expiresAt);

  step("a refresh the server refuses changes nothing");
  const refused = await tess.page.evaluate(async () => {
    const { token, expiresAt } = window.client;
    const code = await window.client.refresh("not-a-token").then(
      () => "resolved",
      (err) => err.code,
    );
    return { code, sameToken: window.client.token === token, sameExpiry: window.client.expiresAt === expiresAt };
  });
  assert(
    refused.code === "UNAUTHENTICATED" && refused.sameToken && refused.sameExpiry,
    `a refused refresh: ${JSON.stringify(refused)}`,
  );

  step("tess's token expires: token-expired, not signed out, and no reconnect with the old token");
  await tess.page.waitForFunction(() => window.expired.length > 0, null, {
    timeout: Math.max(0, tessExp - Date.now()) + 10_000,
    polling: 100,
  });
  const expiredAt = await tess.page.evaluate(() => window.expired[0]);
  // The server's clock and the page's are the same machine's.
  assert(expiredAt >= tessExp - 1_000, `closed ${tessExp - expiredAt} ms before exp`);
  await sleep(1_500);
  const waiting = await tess.page.evaluate(() => ({
    status: window.client.status,
    room: window.room.status,
    expired: window.expired.length,
  }));
  assert(
    waiting.status === "reconnecting" && waiting.room === "rejoining" && waiting.expired === 1,
    `tess should wait for a token: ${JSON.stringify(waiting)}`,
  );
  assert(tess.seen.sockets === 1 && tess.seen.closes === 1, `tess reconnected with a spent token: ${JSON.stringify(tess.seen)}`);

  step("refresh(fresh) reconnects and resumes the room");
  const renewedExp = await tess.page.evaluate(async () => window.client.refresh(await window.freshToken()));
  assert(renewedExp > tessExp + 30_000, `refresh resolved with ${renewedExp}`);
  await tess.page.waitForFunction(
    () => window.client.status === "online" && window.room.status === "joined",
    null,
    { timeout: 15_000, polling: 100 },
  );
  await sendAndSettle(tess.page, "said after a new token");
  const history = await tess.page.evaluate(async () => {
    const { messages } = await window.client.http("GET", "/rooms/expiring/messages?after_seq=0&limit=100");
    return messages.map((e) => ({ seq: e.seq, kind: e.kind, sender: e.sender, body: e.body }));
  });
  const mine = history.filter((e) => e.sender === "tess");
  assert(
    mine.filter((e) => e.kind === "join").length === 1 && !mine.some((e) => e.kind === "leave"),
    `tess's seat should have resumed (one join, no leave): ${JSON.stringify(history)}`,
  );
  assert(mine.some((e) => e.body === "said after a new token"), `the send is not in the history: ${JSON.stringify(history)}`);
  assert(tess.seen.sockets === 2, `one reconnect expected: ${JSON.stringify(tess.seen)}`);
  const final = await tess.page.evaluate(() => window.statuses);
  assert(!final.includes("signed-out"), `tess was signed out: ${JSON.stringify(final)}`);

  step("a token refused at hello still signs out, for good");
  const refusedHello = await tess.page.evaluate(async () => {
    const { ParlorClient } = await import("/web-chat/parlor.js");
    const client = new ParlorClient({ token: "not-a-token" });
    const code = await client.connect().then(
      () => "connected",
      (err) => err.code,
    );
    return { code, status: client.status };
  });
  const sockets = tess.seen.sockets;
  await sleep(1_500);
  assert(
    refusedHello.code === "UNAUTHENTICATED" && refusedHello.status === "signed-out",
    `a refused hello: ${JSON.stringify(refusedHello)}`,
  );
  assert(tess.seen.sockets === sockets, "a refused token was tried again");

  console.log(
    "token renewal: ok — renewed in place on one socket; after an expiry, token-expired, then refresh " +
      `resumed the room (history: ${history.length} entries, one join, no leave)`,
  );
} finally {
  await browser.close();
}
