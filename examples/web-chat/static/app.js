// The web chat page: sign in, join or create rooms, talk. All protocol work
// is in parlor.js; this file only draws what a ParlorClient and its Rooms hold.

import { ParlorClient, ParlorError } from "./parlor.js";

const $ = (selector) => document.querySelector(selector);
const STATUS_TEXT = {
  connecting: "connecting…",
  online: "connected",
  reconnecting: "reconnecting…",
  offline: "offline — reconnecting when the network is back",
  "signed-out": "signed out",
  closed: "signed out",
};
const TOKEN_KEY = "parlor.token";
const CURRENT_KEY = "parlor.current"; // the room on screen, for a reload
/* The server's --max-message-bytes by default (docs/operations.md): the
 * composer counts down as a message nears it. */
const MAX_MESSAGE_BYTES = 4096;
/* Longer bodies fold behind "Show more". */
const FOLD_CHARS = 600;
const FOLD_LINES = 8;

let client = null;
let current = null; // the Room on screen

function words(err) {
  return err instanceof ParlorError ? err.text : String(err?.message || err);
}

function showStatus(status) {
  const pill = $("#status");
  pill.dataset.status = status;
  pill.textContent = STATUS_TEXT[status] || status;
}

async function signIn(token) {
  client?.close();
  const mine = new ParlorClient({ token, storage: sessionStorage });
  client = mine;
  mine.addEventListener("status", () => {
    if (mine !== client) return; // an earlier sign-in's client
    showStatus(mine.status);
    drawRooms();
  });
  showStatus(mine.status);
  try {
    await mine.connect();
  } catch (err) {
    if (mine === client) signedOut(words(err));
    return;
  }
  sessionStorage.setItem(TOKEN_KEY, token);
  $("#me").textContent = client.userId;
  $("#sign-in").hidden = true;
  $("#chat").hidden = false;
  $("#sign-out").hidden = false;
  drawer(!current); // on a phone, nothing to show yet but the room list
  $("#join-form [name=room]").focus();
  // After a reload: the rooms this tab was in, on the same seats.
  const back = await mine.restore();
  if (mine !== client) return;
  back.forEach(watch);
  drawRooms();
  const shown = sessionStorage.getItem(CURRENT_KEY);
  const again = back.find((room) => room.id === shown) ?? back[0];
  if (again && !current) show(again);
}

function signedOut(message) {
  sessionStorage.removeItem(TOKEN_KEY);
  sessionStorage.removeItem(CURRENT_KEY);
  client?.forget();
  client?.close();
  client = null;
  current = null;
  showStatus("signed-out");
  $("#me").textContent = "";
  $("#sign-in").hidden = false;
  $("#chat").hidden = true;
  $("#room").hidden = true;
  $("#sign-out").hidden = true;
  $("#rooms").replaceChildren();
  $("[data-testid=sign-in-error]").textContent = message || "";
}

$("#sign-in-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const form = event.currentTarget;
  const jwt = form.jwt.value.trim();
  const user = form.user.value.trim();
  if (!jwt && !user) {
    $("[data-testid=sign-in-error]").textContent = "Give a user name or paste a JWT.";
    return;
  }
  $("[data-testid=sign-in-error]").textContent = "";
  signIn(jwt || `dev:${user}`);
});

$("#sign-out").addEventListener("click", () => signedOut());

$("#join-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = event.currentTarget;
  const error = $("[data-testid=join-error]");
  error.textContent = "";
  const capacity = Number(form.capacity.value);
  const create = capacity > 0 ? { capacity, title: form.title.value.trim() || undefined } : undefined;
  const button = form.querySelector("button");
  button.disabled = true;
  try {
    const room = await client.join(form.room.value.trim(), { create });
    watch(room);
    form.reset();
    form.querySelector("details").open = false;
    show(room);
  } catch (err) {
    error.textContent = words(err);
  } finally {
    button.disabled = false;
  }
});

/* The room list follows every room (titles, unread badges, status), drawn
 * once per burst of changes. */
let roomsTimer = null;
function watch(room) {
  room.addEventListener("change", () => {
    clearTimeout(roomsTimer);
    roomsTimer = setTimeout(drawRooms, 50);
  });
}

/* On a phone the room list is a drawer over the room (style.css). */
function drawer(open) {
  document.body.classList.toggle("drawer-open", open);
}
$("#rooms-toggle").addEventListener("click", () => drawer(!document.body.classList.contains("drawer-open")));

function show(room) {
  if (current !== room) readNow(); // what was on screen until now was read
  if (editing) stopEdit();
  drawer(false);
  sessionStorage.setItem(CURRENT_KEY, room.id);
  if (current !== room) current?.removeEventListener("change", drawRoom);
  current = room;
  room.addEventListener("change", drawRoom);
  $("#room").hidden = false;
  drawRoom(true);
  drawRooms();
  $("#composer [name=body]").focus();
}

function drawRooms() {
  const list = $("#rooms");
  list.replaceChildren();
  if (!client) return;
  for (const room of client.rooms.values()) {
    const li = document.createElement("li");
    const button = document.createElement("button");
    button.type = "button";
    button.textContent = room.title || room.id;
    if (room.unread > 0 && room !== current) {
      const badge = document.createElement("span");
      badge.className = "badge";
      badge.dataset.testid = "unread";
      badge.textContent = room.unread > 99 ? "99+" : String(room.unread);
      badge.title = `${room.unread} unread`;
      button.append(" ", badge);
    }
    button.dataset.roomStatus = room.status;
    button.classList.toggle("current", room === current);
    button.addEventListener("click", () => show(room));
    li.append(button);
    list.append(li);
  }
}

function entryItem(entry) {
  const li = document.createElement("li");
  li.dataset.seq = entry.seq;
  li.dataset.kind = entry.kind;
  li.dataset.testid = "entry";
  if (entry.kind === "join" || entry.kind === "leave") {
    li.className = "system";
    const why = { kicked: " (removed)", banned: " (banned)", room_closed: " (the room closed)" }[entry.reason] ?? "";
    li.textContent = `${entry.sender} ${entry.kind === "join" ? "joined" : `left${why}`}`;
    return li;
  }
  if (entry.kind === "system") {
    li.className = "system";
    li.textContent = entry.body ?? "";
    return li;
  }
  li.className = entry.sender === client.userId ? "msg mine" : "msg";
  const who = document.createElement("span");
  who.className = "who";
  who.textContent = entry.sender;
  const body = document.createElement("span");
  body.className = "body";
  body.textContent = entry.redacted ? "message deleted" : `${entry.body ?? ""}${entry.edited_at ? " (edited)" : ""}`;
  if (entry.redacted) body.classList.add("deleted");
  const time = document.createElement("time");
  time.dateTime = entry.created_at;
  time.title = `#${entry.seq} · ${entry.created_at}`;
  time.textContent = new Date(entry.created_at).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  li.append(who, body, time);
  if (!entry.redacted) fold(li, body, entry.body ?? "", `${entry.room_id}#${entry.seq}`);
  if (entry.sender === client.userId && !entry.redacted && entry.kind === "text") {
    const room = current;
    li.append(
      button("Edit", "edit", () => startEdit(room, entry.seq, entry.body ?? "")),
      button("Delete", "delete", async () => {
        if (!confirm("Delete this message for everyone?")) return;
        try {
          await room.redact(entry.seq);
        } catch (err) {
          $("#room-error").textContent = words(err);
        }
      }),
    );
  }
  return li;
}

/* Three or more joins and leaves in a row (people reconnecting, a crowd
 * arriving) fold into one line that says what changed — "bob reconnected
 * · carol joined" — and opens on a click to the lines themselves. */
const MEMBERSHIP_RUN = 3;
const openRuns = new Set(); // first seq of each run the reader opened
function collapseMembership(entries, items) {
  const out = [];
  let run = [];
  const flush = () => {
    if (run.length >= MEMBERSHIP_RUN) {
      const key = entries[run[0]].seq;
      const open = openRuns.has(key);
      const summary = document.createElement("li");
      summary.className = "system summary";
      summary.dataset.testid = "membership-summary";
      summary.textContent = `${membershipChanges(run.map((i) => entries[i]))} ${open ? "▾" : "▸"}`;
      summary.title = `${run.length} joins and leaves`;
      summary.addEventListener("click", () => {
        if (openRuns.has(key)) openRuns.delete(key);
        else openRuns.add(key);
        drawRoom();
      });
      out.push(summary);
      for (const i of run) items[i].hidden = !open;
    }
    for (const i of run) out.push(items[i]);
    run = [];
  };
  entries.forEach((entry, i) => {
    if (entry.kind === "join" || entry.kind === "leave") {
      run.push(i);
      return;
    }
    flush();
    out.push(items[i]);
  });
  flush();
  return out;
}

/** What a run of joins and leaves changed, per user, in order of first
 * appearance: "bob reconnected · carol joined · dave came and went". */
function membershipChanges(run) {
  const byUser = new Map();
  for (const e of run) {
    const seen = byUser.get(e.sender);
    byUser.set(e.sender, { first: seen?.first ?? e.kind, last: e.kind, reason: e.reason });
  }
  return [...byUser]
    .map(([user, { first, last, reason }]) => {
      if (first === "leave" && last === "join") return `${user} reconnected`;
      if (first === "join" && last === "leave") return `${user} came and went`;
      if (last === "join") return `${user} joined`;
      return `${user} left${reason === "kicked" ? " (removed)" : ""}`;
    })
    .join(" · ");
}

/** A long body folds behind "Show more" (a button appended to `li`); what
 * the reader unfolded stays so through re-renders (keyed by `key`). */
const unfolded = new Set();
function fold(li, body, text, key) {
  if (text.length <= FOLD_CHARS && text.split("\n").length <= FOLD_LINES) return;
  const open = unfolded.has(key);
  body.classList.toggle("folded", !open);
  const more = button(open ? "Show less" : "Show more", "show-more", () => {
    const folded = body.classList.toggle("folded");
    if (folded) unfolded.delete(key);
    else unfolded.add(key);
    more.textContent = folded ? "Show more" : "Show less";
  });
  more.className = "more";
  li.append(more);
}

function button(text, testid, onClick) {
  const b = document.createElement("button");
  b.type = "button";
  b.textContent = text;
  b.dataset.testid = testid;
  b.addEventListener("click", onClick);
  return b;
}

function outboxItem(room, item) {
  const li = document.createElement("li");
  li.className = `msg mine pending ${item.status}`;
  li.dataset.clientId = item.clientId;
  li.dataset.state = item.status;
  li.dataset.testid = "pending";
  const body = document.createElement("span");
  body.className = "body";
  body.textContent = item.body;
  const state = document.createElement("span");
  state.className = "state";
  state.textContent = item.status === "failed" ? "failed" : item.status === "sent" ? "sent" : "sending…";
  li.append(body, state);
  fold(li, body, item.body, item.clientId);
  if (item.status === "failed") {
    const why = document.createElement("span");
    why.className = "why";
    why.textContent = words(item.error);
    li.append(why);
    // Sending it again unchanged can only work if the trouble was passing.
    const again = !["MESSAGE_TOO_LARGE", "INVALID_INPUT", "FORBIDDEN", "NOT_A_MEMBER"].includes(item.error?.code);
    if (again) li.append(button("Retry", "retry", () => room.retry(item.clientId)));
    li.append(
      button("Edit", "edit-failed", () => {
        if (editing) stopEdit();
        room.discard(item.clientId);
        const field = $("#composer [name=body]");
        field.value = item.body;
        field.dispatchEvent(new Event("input"));
        field.focus();
      }),
      button("Discard", "discard", () => room.discard(item.clientId)),
    );
  }
  return li;
}

/** "Here: alice, bob" — and, for a moderator, Kick and Ban by each other
 * member. What they do shows on every open page as the member's `leave`. */
function drawMembers(room) {
  const line = $("#members");
  line.replaceChildren();
  if (!room.members.length) return;
  line.append("Here: ");
  room.members.forEach((user, i) => {
    const name = document.createElement("span");
    name.className = "member";
    name.dataset.user = user;
    name.textContent = user;
    if (room.canModerate && user !== client.userId) {
      const act = (what) => async () => {
        if (!confirm(`${what === "kick" ? "Remove" : "Ban"} ${user} from this room?`)) return;
        try {
          await (what === "kick" ? room.kick(user) : room.ban(user));
        } catch (err) {
          $("#room-error").textContent = words(err);
        }
      };
      const kick = button("Kick", "kick", act("kick"));
      const ban = button("Ban", "ban", act("ban"));
      kick.className = ban.className = "mod";
      name.append(kick, ban);
    }
    line.append(name, i + 1 < room.members.length ? ", " : "");
  });
  // A big room's `joined` names its first 100 members only.
  const more = room.memberCount - room.members.length;
  if (more > 0) line.append(` and ${more} more`);
}

/** "bob is typing…", "bob and carol are typing…", "3 people are typing…". */
function typingLine(users) {
  if (users.length === 0) return "";
  if (users.length === 1) return `${users[0]} is typing…`;
  if (users.length === 2) return `${users[0]} and ${users[1]} are typing…`;
  return `${users.length} people are typing…`;
}

/* What the page shows is read while the tab is visible: marked half a
 * second after the last change, so a busy room costs one `read` per pause,
 * not one per message. */
let readTimer = null;
function readSoon() {
  if (readTimer) return; // at most one mark per half second, however busy
  readTimer = setTimeout(readNow, 500);
}
function readNow() {
  clearTimeout(readTimer);
  readTimer = null;
  if (current && document.visibilityState === "visible") current.markRead();
}
document.addEventListener("visibilitychange", readSoon);

function drawRoom(jump) {
  const room = current;
  if (!room) return;
  if (room.status === "left") {
    current = null;
    $("#room").hidden = true;
    drawer(true);
    drawRooms();
    return;
  }
  $("#room-title").textContent = room.title || room.id;
  $("#room-id").textContent = room.title ? room.id : "";
  $("#occupancy").textContent =
    room.capacity === null ? "" : `${room.occupancy ?? "?"} / ${room.capacity} seats`;
  drawMembers(room);
  $("#typing").textContent = typingLine(room.typingUsers);
  const error = room.status === "error" || room.error ? words(room.error) : "";
  const rejoining = room.status === "rejoining";
  $("#room-error").textContent = rejoining ? "Reconnecting to the room…" : error;
  $("#room-error").classList.toggle("notice", rejoining);
  $("#earlier").hidden = !room.hasEarlier;

  const scroller = $("#scroller");
  const atBottom = scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight < 40;
  // Edits and redactions show on the message they change, not as lines.
  const shown = room.entries.filter((e) => e.kind !== "edit" && e.kind !== "redaction");
  const items = collapseMembership(shown, shown.map(entryItem));
  for (const item of room.outbox) items.push(outboxItem(room, item));
  $("#messages").replaceChildren(...items);
  readSoon();
  if (jump === true || atBottom) scroller.scrollTop = scroller.scrollHeight;
  drawRooms();
}

$("#earlier").addEventListener("click", async () => {
  const room = current;
  const scroller = $("#scroller");
  const fromBottom = scroller.scrollHeight - scroller.scrollTop;
  try {
    await room.loadEarlier();
    scroller.scrollTop = scroller.scrollHeight - fromBottom; // keep the reader's place
  } catch (err) {
    $("#room-error").textContent = words(err);
  }
});

$("#leave").addEventListener("click", () => current?.leave());

/* Editing one of your messages: the composer holds its text until sent
 * (as an edit) or Escape. */
let editing = null; // {room, seq}
function startEdit(room, seq, text, note = "Editing your message — Enter saves, Escape cancels") {
  editing = { room, seq };
  const field = $("#composer [name=body]");
  field.value = text;
  $("#editing").textContent = note;
  $("#editing").hidden = false;
  field.focus();
  drawLimit();
}
/** Leaves editing; the composer is emptied. */
function stopEdit() {
  editing = null;
  $("#editing").hidden = true;
  $("#composer [name=body]").value = "";
  drawLimit();
}

$("#composer").addEventListener("submit", async (event) => {
  event.preventDefault();
  const field = event.currentTarget.body;
  const body = field.value;
  if (editing && body.trim()) {
    const { room, seq } = editing;
    stopEdit();
    try {
      await room.edit(seq, body);
    } catch (err) {
      // Nothing lost: the text goes back in the composer, still editing.
      startEdit(room, seq, body, `Not saved: ${words(err)} — Enter tries again, Escape cancels`);
    }
    return;
  }
  if (!current || !body.trim()) return;
  current.send(body);
  current.stoppedTyping();
  field.value = "";
  drawLimit();
  $("#scroller").scrollTop = $("#scroller").scrollHeight;
});

$("#composer [name=body]").addEventListener("input", (event) => {
  drawLimit();
  if (!current) return;
  if (event.currentTarget.value.trim()) current.typing();
  else current.stoppedTyping();
});

/** The composer's count of bytes left, once a message nears the limit. */
function drawLimit() {
  const bytes = new TextEncoder().encode($("#composer [name=body]").value).length;
  const limit = $("#limit");
  limit.hidden = bytes < MAX_MESSAGE_BYTES * 0.8;
  limit.textContent = `${MAX_MESSAGE_BYTES - bytes}`;
  limit.title = `${bytes} of ${MAX_MESSAGE_BYTES} bytes`;
  limit.classList.toggle("over", bytes > MAX_MESSAGE_BYTES);
}

$("#composer [name=body]").addEventListener("keydown", (event) => {
  if (event.key === "Escape" && editing) {
    stopEdit();
    return;
  }
  if (event.key === "Enter" && !event.shiftKey) {
    event.preventDefault();
    event.currentTarget.form.requestSubmit();
  }
});

const saved = sessionStorage.getItem(TOKEN_KEY);
if (saved) signIn(saved);
