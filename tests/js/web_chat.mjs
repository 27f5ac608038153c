// The web chat in a real browser: headless Chromium (Debian's package)
// driven by playwright-core. Run by `cargo test -p parlor-tests --test
// web_chat_browser`, which starts the server and passes its URL and the
// screenshot folder: node web_chat.mjs <base-url> <screenshot-dir>
//
// Two users in two browser contexts talk — one sees the other typing —; one goes offline while the other
// sends 20 messages and comes back to every message exactly once, in order,
// without a reload; its own message sent while offline is delivered once.
// Then the errors a person must be able to read: a full room, and a message
// too large, marked failed with a retry.

import { mkdirSync } from "node:fs";
import path from "node:path";
import { launch, step } from "./browser.mjs";

const [base, shots] = process.argv.slice(2);
if (!base || !shots) throw new Error("usage: node web_chat.mjs <base-url> <screenshot-dir>");
mkdirSync(shots, { recursive: true });

const browser = await launch();

const shot = (page, name) => page.screenshot({ path: path.join(shots, `${name}.png`) });

/** Console errors and uncaught exceptions of every page (a refused HTTP
 * call's "Failed to load resource" line is the browser's, not the page's). */
const consoleErrors = [];

async function open(user, viewport = { width: 1100, height: 720 }) {
  const context = await browser.newContext({ viewport });
  const page = await context.newPage();
  page.on("console", (m) => {
    if (m.type() === "warning") console.log(`[${user}] ${m.text()}`);
    if (m.type() === "error" && !m.text().startsWith("Failed to load resource")) {
      consoleErrors.push(`[${user}] ${m.text()}`);
    }
  });
  page.on("pageerror", (e) => consoleErrors.push(`[${user}] page error: ${e.message}`));
  await page.goto(base);
  await page.fill("[data-testid=user]", user);
  await page.click("[data-testid=sign-in]");
  await status(page, "online");
  return { context, page };
}

const status = (page, s) => page.waitForSelector(`[data-testid=status][data-status="${s}"]`);

async function join(page, room, create) {
  await page.fill("[data-testid=room-id]", room);
  if (create) {
    await page.$eval("#join-form details", (d) => (d.open = true));
    await page.fill("[data-testid=capacity]", String(create.capacity));
    if (create.title) await page.fill("[data-testid=title]", create.title);
  }
  await page.click("[data-testid=join]");
}

async function say(page, text) {
  await page.fill("[data-testid=composer]", text);
  await page.press("[data-testid=composer]", "Enter");
}

/** The room's log as the page shows it: {seq, kind, body}, top to bottom. */
const log = (page) =>
  page.$$eval("[data-testid=messages] li[data-testid=entry]", (items) =>
    items.map((li) => ({
      seq: Number(li.dataset.seq),
      kind: li.dataset.kind,
      body: li.querySelector(".body")?.textContent ?? null,
    })),
  );

const pending = (page) =>
  page.$$eval("[data-testid=messages] li[data-testid=pending]", (items) =>
    items.map((li) => ({ state: li.dataset.state, body: li.querySelector(".body").textContent })),
  );

/** Waits until the page's log holds `bodies` as entries. */
async function until(page, bodies) {
  await page.waitForFunction(
    (wanted) => {
      const have = new Set(
        [...document.querySelectorAll("[data-testid=messages] li[data-testid=entry] .body")].map((b) => b.textContent),
      );
      return wanted.every((b) => have.has(b));
    },
    bodies,
    { timeout: 20_000 },
  );
}

function assert(ok, message) {
  if (!ok) throw new Error(message);
}

/** Every seq once, each one more than the last; each body in `bodies` once, in that order. */
function checkLog(who, entries, bodies) {
  for (let i = 1; i < entries.length; i++) {
    assert(entries[i].seq === entries[i - 1].seq + 1, `${who}: seq ${entries[i - 1].seq} then ${entries[i].seq}`);
  }
  const texts = entries.filter((e) => e.kind === "text").map((e) => e.body);
  for (const body of bodies) {
    const n = texts.filter((t) => t === body).length;
    assert(n === 1, `${who}: "${body}" shown ${n} times`);
  }
  const order = texts.filter((t) => bodies.includes(t));
  assert(JSON.stringify(order) === JSON.stringify(bodies), `${who}: out of order: ${order.join(",")}`);
}

try {
  step("alice creates a room; bob joins it");
  const alice = await open("alice");
  await join(alice.page, "talk", { capacity: 4, title: "Talk" });
  await alice.page.waitForSelector("[data-testid=room-title]:text('Talk')");
  const bob = await open("bob");
  await join(bob.page, "talk");
  await bob.page.waitForSelector("[data-testid=members]:text('alice, bob')");
  await alice.page.waitForSelector("[data-testid=members]:text('alice, bob')");
  await alice.page.waitForSelector("[data-testid=occupancy]:text('2 / 4 seats')");

  step("they talk");
  await say(alice.page, "hello bob");
  await until(bob.page, ["hello bob"]);
  await say(bob.page, "hi alice, how are you?");
  await until(alice.page, ["hi alice, how are you?"]);
  await until(bob.page, ["hi alice, how are you?"]); // its entry, not just the ack
  await shot(alice.page, "01-talking");

  step("alice types: bob sees her typing, and the line clears when she sends");
  await alice.page.fill("[data-testid=composer]", "let me think");
  await bob.page.waitForSelector("[data-testid=typing]:text('alice is typing…')");
  await shot(bob.page, "01b-typing");
  const ownLine = await alice.page.textContent("[data-testid=typing]");
  assert(ownLine === "", `alice sees her own typing: "${ownLine}"`);
  await alice.page.press("[data-testid=composer]", "Enter");
  await until(bob.page, ["let me think"]);
  // Cleared by her message, not by the 6 s timeout.
  await bob.page.waitForFunction(() => document.querySelector("[data-testid=typing]").textContent === "", null, {
    timeout: 3_000,
  });

  step("bob goes offline; alice sends 20 messages; bob writes one while offline");
  await bob.page.evaluate(() => (window.__notReloaded = true));
  await bob.context.setOffline(true);
  await status(bob.page, "offline");
  const burst = Array.from({ length: 20 }, (_, i) => `message ${String(i + 1).padStart(2, "0")}`);
  await say(bob.page, "written while offline");
  const waiting = await pending(bob.page);
  assert(
    waiting.length === 1 && waiting[0].state === "sending",
    `bob's offline message should wait as "sending": ${JSON.stringify(waiting)}`,
  );
  for (const text of burst) await say(alice.page, text);
  await until(alice.page, burst);
  await shot(bob.page, "02-bob-offline");

  step("bob comes back: every message once, in order, no reload");
  await bob.context.setOffline(false);
  // A connection attempt made while offline can hang rather than fail; the
  // client's heartbeat drops it after the ping interval + timeout (45 s).
  await bob.page.waitForSelector('[data-testid=status][data-status="online"]', { timeout: 60_000 });
  await until(bob.page, [...burst, "written while offline"]);
  await bob.page.waitForFunction(() => !document.querySelector("li[data-testid=pending]"));
  assert(await bob.page.evaluate(() => window.__notReloaded === true), "bob's page was reloaded");
  const bobLog = await log(bob.page);
  checkLog("bob", bobLog, ["hello bob", "hi alice, how are you?", "let me think", ...burst, "written while offline"]);
  await until(alice.page, ["written while offline"]);
  const aliceLog = await log(alice.page);
  checkLog("alice", aliceLog, ["hello bob", "hi alice, how are you?", "let me think", ...burst, "written while offline"]);
  await shot(bob.page, "03-bob-caught-up");

  step("a newcomer scrolls back through the history");
  const more = Array.from({ length: 40 }, (_, i) => `later ${i + 1}`);
  for (const text of more) await say(alice.page, text);
  await until(alice.page, more);
  const carol = await open("carol");
  await join(carol.page, "talk");
  await until(carol.page, more);
  await carol.page.waitForSelector("[data-testid=earlier]:visible");
  const firstPage = await log(carol.page);
  assert(firstPage[0].seq > 1, `carol's first page should not reach seq 1: starts at ${firstPage[0].seq}`);
  await carol.page.click("[data-testid=earlier]");
  await carol.page.waitForSelector("[data-testid=earlier]", { state: "hidden" });
  const carolLog = await log(carol.page);
  assert(carolLog[0].seq === 1, `carol's history should start at seq 1: ${carolLog[0].seq}`);
  checkLog("carol", carolLog, ["hello bob", ...burst, "written while offline", ...more]);
  console.log(`  carol saw seqs ${firstPage[0].seq}.. first, then 1..${carolLog.at(-1).seq}`);

  step("bob looks at another room: Talk's unread badge counts alice's messages, and clears when he opens it");
  await join(bob.page, "side", { capacity: 4, title: "Side" });
  await bob.page.waitForSelector("[data-testid=room-title]:text('Side')");
  await say(alice.page, "are you there?");
  await say(alice.page, "bob?");
  await bob.page.waitForSelector("[data-testid=rooms] button:has-text('Talk') [data-testid=unread]:text-is('2')");
  await shot(bob.page, "03b-unread");
  await bob.page.click("[data-testid=rooms] button:has-text('Talk')");
  // The server has the marker: bob's unread there drops to 0 (the read goes
  // half a second after the page shows the room).
  await bob.page.waitForFunction(
    async () => (await (await fetch("/v1/rooms/talk", { headers: { Authorization: "Bearer dev:bob" } })).json()).unread === 0,
    null,
    { timeout: 10_000, polling: 200 },
  );
  // Back on Side, Talk has no badge: it was read, not just on screen.
  await bob.page.click("[data-testid=rooms] button:has-text('Side')");
  await bob.page.waitForSelector("[data-testid=room-title]:text('Side')");
  const stale = await bob.page.$("[data-testid=rooms] [data-testid=unread]");
  assert(!stale, "Talk still shows a badge after bob read it");
  await bob.page.click("[data-testid=rooms] button:has-text('Talk')");

  step("bob reloads mid-conversation: his rooms, seat and unsent message survive; alice sees no left or joined");
  const bobLines = (page) =>
    page.$$eval("[data-testid=messages] li.system", (items) =>
      items.map((li) => li.textContent).filter((t) => t.startsWith("bob ")),
    );
  const linesBefore = await bobLines(alice.page);
  await bob.context.setOffline(true);
  await status(bob.page, "offline");
  await say(bob.page, "sent across a reload");
  await bob.context.setOffline(false);
  // The first two rejoins after the reload fail as a network blip would:
  // the page tries again instead of dropping the rooms.
  let blips = 0;
  const reservations = "**/v1/rooms/*/reservations";
  await bob.page.route(reservations, (route) => (blips++ < 2 ? route.abort() : route.continue()));
  await bob.page.reload();
  await status(bob.page, "online");
  await bob.page.waitForSelector("[data-testid=room-title]:text('Talk')");
  await until(bob.page, ["bob?", "sent across a reload"]);
  await until(alice.page, ["sent across a reload"]);
  await bob.page.waitForFunction(() => {
    const rooms = [...document.querySelectorAll("[data-testid=rooms] button")].map((b) => b.textContent.trim());
    return rooms.includes("Talk") && rooms.includes("Side");
  });
  await bob.page.unroute(reservations);
  assert(blips >= 3, `the rejoins were not tried again (${blips} reservations)`);
  const aliceSees = (await log(alice.page)).filter((e) => e.body === "sent across a reload").length;
  assert(aliceSees === 1, `alice sees the message ${aliceSees} times`);
  await alice.page.waitForTimeout(500);
  const linesAfter = await bobLines(alice.page);
  assert(
    JSON.stringify(linesAfter) === JSON.stringify(linesBefore),
    `alice saw bob come and go: ${JSON.stringify(linesBefore)} then ${JSON.stringify(linesAfter)}`,
  );
  await shot(bob.page, "03c-after-reload");

  step("alice edits and deletes her own message: bob's page shows each as it happens");
  await say(alice.page, "see you at 5");
  await until(bob.page, ["see you at 5"]);
  const mine = alice.page.locator("li[data-testid=entry]", { hasText: "see you at 5" });
  await mine.hover();
  await mine.locator("[data-testid=edit]").click();
  await alice.page.fill("[data-testid=composer]", "see you at 6");
  await alice.page.press("[data-testid=composer]", "Enter");
  await bob.page.waitForSelector("li[data-testid=entry] .body:text('see you at 6 (edited)')");
  alice.page.once("dialog", (d) => d.accept());
  const edited = alice.page.locator("li[data-testid=entry]", { hasText: "see you at 6" });
  await edited.hover();
  await edited.locator("[data-testid=delete]").click();
  await bob.page.waitForSelector("li[data-testid=entry] .body:text('message deleted')");
  const gone = await bob.page.$$eval("li[data-testid=entry] .body", (b) => b.some((x) => x.textContent.includes("see you at")));
  assert(!gone, "bob's page still shows the deleted text");
  await shot(bob.page, "03d-edited-deleted");

  step("a full room says so");
  await join(alice.page, "tiny", { capacity: 1 });
  await alice.page.waitForSelector("[data-testid=occupancy]:text('1 / 1 seats')");
  await join(bob.page, "tiny");
  const full = await bob.page.waitForSelector("[data-testid=join-error]:text('full')");
  console.log(`  bob reads: ${await full.textContent()}`);
  await shot(bob.page, "04-room-full");

  step("a message too large: the composer counts down, the message fails with edit-or-discard (no retry), and an edit sends");
  await alice.page.fill("[data-testid=composer]", "x".repeat(5000));
  const left = await alice.page.textContent("[data-testid=limit]");
  assert(left === String(4096 - 5000), `the composer's count: ${left}`);
  await alice.page.press("[data-testid=composer]", "Enter");
  const failed = await alice.page.waitForSelector("li[data-testid=pending][data-state=failed]");
  assert(!(await failed.$("[data-testid=retry]")), "a retry that can never succeed is offered");
  assert(await failed.$("[data-testid=discard]"), "no discard on the failed message");
  console.log(`  alice reads: ${await failed.$eval(".why", (e) => e.textContent)}`);
  await shot(alice.page, "05-too-large");
  await alice.page.click("li[data-testid=pending] [data-testid=edit-failed]");
  const back = await alice.page.inputValue("[data-testid=composer]");
  assert(back.length === 5000, `the composer should hold the message again: ${back.length} chars`);
  assert((await pending(alice.page)).length === 0, "the failed message should leave the outbox");
  await alice.page.fill("[data-testid=composer]", "x".repeat(4000));
  await alice.page.press("[data-testid=composer]", "Enter");
  await until(alice.page, ["x".repeat(4000)]);

  step("a long message folds behind show more");
  const long = Array.from({ length: 30 }, (_, i) => `line ${i + 1}`).join("\n");
  await alice.page.fill("[data-testid=composer]", long);
  await alice.page.press("[data-testid=composer]", "Enter");
  // Locators, not element handles: the list is drawn anew as the entry,
  // its ack and the read state arrive, and a locator finds it each time.
  const longOne = alice.page.locator("li[data-testid=entry]", { hasText: "line 29" });
  await longOne.locator("[data-testid=show-more]").waitFor();
  const folded = await longOne.locator(".body").evaluate((b) => b.scrollHeight > b.clientHeight + 5);
  assert(folded, "the long message is not folded");
  await longOne.locator("[data-testid=show-more]").click();
  const unfolded = await longOne.locator(".body").evaluate((b) => b.scrollHeight <= b.clientHeight + 1);
  assert(unfolded, "show more does not unfold it");

  step("dave on a phone (390×844): the room list is a drawer, the composer takes the width");
  const dave = await open("dave", { width: 390, height: 844 });
  await dave.page.waitForSelector("#join-form", { state: "visible" }); // the drawer is open with no room
  await join(dave.page, "talk");
  await dave.page.waitForSelector("[data-testid=room-title]:text('Talk')");
  await dave.page.waitForFunction(() => {
    const aside = document.querySelector("aside").getBoundingClientRect();
    return aside.right <= 1; // slid away
  });
  const width = await dave.page.$eval("[data-testid=composer]", (c) => c.getBoundingClientRect().width);
  assert(width >= 0.6 * 390, `the composer is ${width}px of 390`);
  console.log(`  dave's composer: ${Math.round(width)} px of 390`);
  await say(dave.page, "hi from my phone");
  await bob.page.click("[data-testid=rooms] button:has-text('Talk')");
  await until(bob.page, ["hi from my phone"]);
  await shot(dave.page, "06-phone");
  await dave.page.click("[data-testid=rooms-toggle]");
  await dave.page.waitForFunction(() => document.querySelector("aside").getBoundingClientRect().left >= 0);
  await shot(dave.page, "07-phone-drawer");

  step("alice, who made Talk, moderates: she kicks dave; every page shows it; joins and leaves in a row fold into one line");
  await alice.page.click("[data-testid=rooms] button:has-text('Talk')");
  const daveHere = alice.page.locator("[data-testid=members] .member[data-user=dave]");
  await daveHere.locator("[data-testid=kick]").waitFor();
  const bobKicks = await bob.page.locator("[data-testid=members] [data-testid=kick]").count();
  assert(bobKicks === 0, `bob moderates nothing but sees ${bobKicks} Kick buttons`);
  const selfKicks = await alice.page.locator("[data-testid=members] .member[data-user=alice] [data-testid=kick]").count();
  assert(selfKicks === 0, "alice is offered to kick herself");
  const kick = async () => {
    alice.page.once("dialog", (d) => d.accept());
    await alice.page.locator("[data-testid=members] .member[data-user=dave] [data-testid=kick]").click();
  };
  await kick();
  await bob.page.waitForSelector("[data-testid=messages] li.system:text('dave left (removed)')");
  await alice.page.waitForFunction(() => !document.querySelector("[data-testid=members] .member[data-user=dave]"));
  // dave comes back, and is kicked again: leave, join, leave in a row.
  await dave.page.evaluate(() => document.body.classList.add("drawer-open"));
  await join(dave.page, "talk");
  await daveHere.locator("[data-testid=kick]").waitFor();
  await kick();
  const summary = bob.page.locator("[data-testid=membership-summary]", { hasText: "dave left (removed)" });
  await summary.waitFor();
  const hiddenLines = await bob.page.$$eval("[data-testid=messages] li.system[hidden]", (l) => l.length);
  assert(hiddenLines >= 3, `the run's ${hiddenLines} lines are not folded`);
  await summary.click();
  await bob.page.waitForFunction(() => !document.querySelector("[data-testid=messages] li.system[hidden]"));
  await shot(alice.page, "08-moderation");

  assert(consoleErrors.length === 0, `console errors: ${consoleErrors.join(" | ")}`);
  // Refused typing signals (a burst of sends outruns the signal rate) must
  // not leave an error on a room whose messages all went through.
  for (const [who, page] of [["alice", alice.page], ["bob", bob.page]]) {
    await page.click("[data-testid=rooms] button:has-text('Talk')");
    const banner = await page.textContent("[data-testid=room-error]");
    assert(banner === "", `${who}'s Talk shows an error: "${banner}"`);
  }

  const seqs = bobLog.map((e) => e.seq);
  console.log(
    `web chat: ok — bob holds seqs ${seqs[0]}..${seqs.at(-1)} (${seqs.length} entries, no gap, no duplicate) after going offline`,
  );
} finally {
  await browser.close();
}
