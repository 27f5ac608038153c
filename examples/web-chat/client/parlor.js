// parlor.js — a small browser client for Parlor's HTTP + raw WebSocket
// transport (docs/contract.md §4–§5). A plain ES module with no dependencies and no
// build step: copy it next to your page and `import` it. README.md beside it
// documents the API.
//
// What it guarantees to the page:
// - entries are ordered by `seq` only and held once each, across reconnects;
// - a send shows at once ("sending") under a client id and is replaced by the
//   server's entry; an error marks it "failed" (retry() sends it again with
//   the same client id) — nothing is dropped silently;
// - sends leave in order; after a reconnect the unacked ones are re-sent in
//   order with their original client ids (the server keeps sends idempotent);
// - the socket reconnects by itself with backoff and jitter and resumes every
//   room after the last seq it holds;
// - an expiring token is renewed in place (`getToken`, `refresh`); one that
//   expired anyway costs a reconnect with a fresh token, not a sign-out;
// - a server gone silent (a network that vanished without a word, a frozen
//   proxy) is noticed: the client pings, and a socket that hears nothing for
//   longer than the server's ping interval + timeout is dropped and reopened;
// - join() settles: it resolves once joined or rejects with the reason;
// - who is typing is known per room (`typingUsers`), from the others'
//   `typing` / `stopped_typing` signals, and cleared when they send or go
//   quiet — signals are never stored, so nothing of them is replayed.

/** Words for each contract error code, for people rather than programs. */
/** Refusals that pass: a restored room's rejoin tries again after them. */
const PASSING_REFUSALS = new Set(["NETWORK", "UNAVAILABLE", "RATE_LIMITED", "INTERNAL"]);
/** How long a restored room keeps trying to rejoin, in ms. */
const RESTORE_PATIENCE_MS = 30_000;

export const ERROR_TEXT = {
  UNAUTHENTICATED: "Sign-in failed: the server did not accept this token.",
  FORBIDDEN: "This page's origin is not allowed to talk to the server.",
  INVALID_INPUT: "The server could not accept that.",
  ROOM_NOT_FOUND: "There is no room with that id. Give a capacity to create it.",
  ROOM_FULL: "This room is full: every seat is taken.",
  ROOM_PENDING: "Someone else is creating this room right now. Try again in a few seconds.",
  TICKET_INVALID: "The seat ticket was not accepted. Join the room again.",
  TICKET_EXPIRED: "The seat reservation ran out. Join the room again.",
  NOT_A_MEMBER: "You are not a member of this room (any more). Join it again.",
  MESSAGE_TOO_LARGE: "Too large: this message is over the server's size limit.",
  RATE_LIMITED: "You are sending too fast. Wait a moment, then retry.",
  UNAVAILABLE: "The server cannot reach its storage right now. Retry in a moment.",
  INTERNAL: "The server hit an internal error.",
  NETWORK: "The server cannot be reached.",
};

/** An error with a contract code (`ROOM_FULL`, …) and the server's message. */
export class ParlorError extends Error {
  constructor(code, message) {
    super(message || ERROR_TEXT[code] || code);
    this.code = code;
  }

  /** The error in words: the code's text, plus the server's detail for INVALID_INPUT. */
  get text() {
    const words = ERROR_TEXT[this.code] || this.message;
    return this.code === "INVALID_INPUT" && this.message ? `${words} (${this.message})` : words;
  }
}

const BACKOFF_FIRST_MS = 250;
const BACKOFF_MAX_MS = 10_000;
const HISTORY_PAGE = 50;
/* The heartbeat when the server's `welcome` does not say (docs/protocol.md:
 * the server's own defaults, --ping-interval and --ping-timeout). */
const PING_INTERVAL_MS = 25_000;
const PING_TIMEOUT_MS = 20_000;
/* Token renewal with getToken: 30 s before expires_at, or with a fifth of
 * the time left for a short-lived token; never sooner than 1 s from now, so
 * a clock askew that makes every token look expired cannot spin. */
const RENEW_AHEAD_MS = 30_000;
const RENEW_MIN_MS = 1_000;
/* Typing (docs/contract.md §2, "Signals"): a typist says `typing` at most
 * this often while the user types, and is shown as typing for this long
 * after the last one — a sender that vanishes sends no `stopped_typing`. */
const TYPING_EVERY_MS = 3_000;
const TYPING_SHOWN_MS = 6_000;
/* Refusals of a joined room's `signal` or `read` frame (they carry the room
 * id but no client id): the room itself is fine. */
const MOMENTARY_REFUSALS = new Set(["RATE_LIMITED", "FORBIDDEN", "INVALID_INPUT", "MESSAGE_TOO_LARGE"]);

/* A client id that grows with time, as a UUIDv7 does: 48 bits of
 * milliseconds, then 80 random bits. The server indexes client ids per
 * room, and ids that grow together are the cheapest to index
 * (docs/protocol.md). getRandomValues works where randomUUID does not:
 * pages served over plain http on a LAN address are not a secure context. */
function newClientId() {
  const hex = (bytes) => Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  const millis = Date.now().toString(16).padStart(12, "0");
  return `${millis}-${hex(crypto.getRandomValues(new Uint8Array(10)))}`;
}

/**
 * One user's connection to a Parlor server: one WebSocket shared by every
 * room, re-opened whenever it is lost. Events: `status` (see `status`) and
 * `token-expired` (the token ran out; `refresh(token)` reconnects).
 */
export class ParlorClient extends EventTarget {
  /**
   * @param {object} options
   * @param {string} options.token  a JWT, or `dev:<user>` under --dev-auth
   * @param {string} [options.baseUrl]  the server's http(s) origin; the page's by default
   * @param {() => Promise<string>} [options.getToken]  gives a fresh token for the same
   *   user: asked before each reconnect, and shortly before the token expires to renew
   *   it in place
   * @param {Storage} [options.storage]  where to keep, per user, the rooms joined (each
   *   with its resume point) and the messages not yet stored, on every change, so that
   *   `restore()` after a reload rejoins them — `sessionStorage` for a tab
   */
  constructor({ token, baseUrl = location.origin, getToken = null, storage = null }) {
    super();
    this.storage = storage;
    this._saveTimer = null;
    this._onPageHide = () => this._saveNow();
    if (storage) addEventListener("pagehide", this._onPageHide);
    this.token = token;
    this.getToken = getToken;
    /** When the token in use expires, in ms since the epoch, or null if it
     * does not. From `welcome` and `refreshed` (`expires_at`). */
    this.expiresAt = null;
    this.baseUrl = baseUrl.replace(/\/$/, "");
    /** "connecting" | "online" | "reconnecting" | "offline" | "signed-out" | "closed" */
    this.status = "connecting";
    /** Set by the server's `welcome`. */
    this.userId = null;
    /** @type {Map<string, Room>} */
    this.rooms = new Map();
    /** The heartbeat, in ms: a `ping` goes every `pingIntervalMs`; a server
     * silent for longer than both together is taken as lost. From `welcome`. */
    this.pingIntervalMs = PING_INTERVAL_MS;
    this.pingTimeoutMs = PING_TIMEOUT_MS;
    this._heartbeat = null;
    this._heardAt = 0; // when the socket last brought any frame
    this._pingedAt = 0; // when the last ping went
    this._unansweredSince = null; // the first ping sent since _heardAt
    this._ws = null;
    this._attempt = 0;
    this._timer = null;
    this._closed = false;
    this._welcomed = false;
    this._waiters = [];
    this._helloToken = null; // the token the current socket said hello with
    this._expiryOf = null; // the token expiresAt is about
    this._expiredToken = null; // the last token `token-expired` was fired for
    this._renewal = null; // the timer that renews the token in place
    this._refreshes = []; // refresh frames sent, unanswered: {token, previous, waiters}
    this._tokenWaiters = []; // refresh() calls waiting for the next welcome
    this._waitingForToken = false; // the token expired: refresh(token) reconnects
    this._reopening = false; // a reconnect is waiting for getToken()
    this._onOnline = () => this._reconnectNow();
    this._onOffline = () => this._drop("offline");
    addEventListener("online", this._onOnline);
    addEventListener("offline", this._onOffline);
  }

  /** Opens the socket; resolves at the first `welcome`, rejects on a refused token. */
  connect() {
    const welcomed = new Promise((resolve, reject) => this._waiters.push({ resolve, reject }));
    this._open();
    return welcomed;
  }

  /**
   * Renews the token: `token` (a fresh one for the same user) is used from
   * now on, for reconnects and HTTP calls, and a live socket gets it at once
   * in a `refresh` frame, so the server does not close it at the old
   * token's expiry. Resolves with the new `expiresAt` once the server took
   * it (`refreshed`, or the `welcome` of the next connection); rejects with
   * a ParlorError (UNAUTHENTICATED) if a live socket refused it — the
   * previous token then stays in use, and so does its expiry. After
   * `token-expired`, this is what reconnects.
   */
  refresh(token) {
    const previous = this.token;
    this.token = token;
    return new Promise((resolve, reject) => {
      const waiter = { resolve, reject };
      if (this._sendRefresh(token, previous, [waiter])) return;
      // No live socket: the next hello carries the token.
      this._tokenWaiters.push(waiter);
      if (this._waitingForToken) this._reconnectNow();
    });
  }

  /** Closes for good with 1000, which leaves every room at once. */
  close() {
    this._closed = true;
    clearTimeout(this._timer);
    clearTimeout(this._renewal);
    this._stopHeartbeat();
    removeEventListener("online", this._onOnline);
    removeEventListener("offline", this._onOffline);
    removeEventListener("pagehide", this._onPageHide);
    this._ws?.close(1000, "bye");
    this._ws = null;
    this._setStatus("closed");
  }

  /**
   * Rejoins the rooms this user's previous page saved in `storage`, each
   * resuming after the last seq it held — within the server's reconnect
   * grace the seat is the same, so the others see no `left` and no
   * `joined` — and re-sends its unsent messages under their client ids
   * (the server keeps sends idempotent: none is stored twice). The latest
   * page of history is read again. Resolves with the rooms that came back
   * (a room that refuses now, full or closed, is dropped and forgotten; a
   * passing refusal — the network, a busy server — is tried again for up
   * to 30 s first).
   */
  async restore() {
    let saved = [];
    try {
      saved = JSON.parse(this.storage?.getItem(this._storageKey()) ?? "[]");
    } catch {
      // A damaged entry: nothing to restore.
    }
    const rooms = saved
      .filter((s) => typeof s?.id === "string" && !this.rooms.has(s.id))
      .map((s) => {
        const room = new Room(this, s.id);
        room._lastSeq = Number.isSafeInteger(s.lastSeq) ? s.lastSeq : null;
        room.joinedOnce = true; // a rejoin: never creates the room
        room._restored = true;
        // A message that had failed stays failed (its retry is the user's
        // to ask for); the others go again.
        room.outbox = (s.outbox ?? []).map((m) => ({
          clientId: m.clientId,
          body: m.body,
          status: m.failed ? "failed" : "sending",
          error: m.failed ? new ParlorError(m.failed) : null,
        }));
        this.rooms.set(s.id, room);
        return this._rejoin(room).then(
          () => room,
          () => {
            this.rooms.delete(s.id);
            this._saveSoon();
            return null;
          },
        );
      });
    return (await Promise.all(rooms)).filter(Boolean);
  }

  /** Rejoins a restored room, trying again while the refusal is passing
   * (the network, the server busy, the reservation rate after a reload of
   * many rooms) — 0.5 s, then twice as long each time, for up to 30 s — so
   * a blip during a reload does not drop the room. */
  async _rejoin(room) {
    const giveUpAt = Date.now() + RESTORE_PATIENCE_MS;
    for (let wait = 500; ; wait = Math.min(wait * 2, 8000)) {
      try {
        return await room._start();
      } catch (err) {
        if (!PASSING_REFUSALS.has(err?.code) || this._closed || Date.now() + wait > giveUpAt) throw err;
        await new Promise((resolve) => setTimeout(resolve, wait));
      }
    }
  }

  /** Forgets what `storage` holds for this user (signing out). */
  forget() {
    clearTimeout(this._saveTimer);
    this.storage?.removeItem(this._storageKey());
  }

  _storageKey() {
    return `parlor.rooms.${this.userId}`;
  }

  /** Saves the rooms and unsent messages soon (a burst of changes, once). */
  _saveSoon() {
    if (!this.storage || !this.userId || this._closed) return;
    clearTimeout(this._saveTimer);
    this._saveTimer = setTimeout(() => this._saveNow(), 50);
  }

  /** Saves at once: a message written must survive a reload that follows
   * it within the same breath (and `pagehide` flushes what is pending). */
  _saveNow() {
    clearTimeout(this._saveTimer);
    if (!this.storage || !this.userId || this._closed) return;
    const state = [...this.rooms.values()]
      .filter((room) => room.joinedOnce && room.status !== "left")
      .map((room) => ({
        id: room.id,
        lastSeq: room.lastSeq,
        outbox: room.outbox
          .filter((m) => m.status !== "sent")
          .map(({ clientId, body, status, error }) => ({ clientId, body, failed: status === "failed" ? error?.code ?? "INTERNAL" : null })),
      }));
    this.storage.setItem(this._storageKey(), JSON.stringify(state));
  }

  /**
   * Reserves a seat and joins `roomId`; with `create: {capacity, title}` the
   * room is created if it does not exist. Resolves with the Room once joined.
   */
  async join(roomId, { create } = {}) {
    let room = this.rooms.get(roomId);
    if (!room) {
      room = new Room(this, roomId, create);
      this.rooms.set(roomId, room);
    }
    try {
      await room._start();
    } catch (err) {
      if (!room.joinedOnce) this.rooms.delete(roomId);
      throw err;
    }
    return room;
  }

  /** An HTTP call to the server's /v1 API; throws ParlorError. */
  async http(method, path, body) {
    let response;
    try {
      response = await fetch(`${this.baseUrl}/v1${path}`, {
        method,
        headers: {
          authorization: `Bearer ${this.token}`,
          ...(body === undefined ? {} : { "content-type": "application/json" }),
        },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch {
      throw new ParlorError("NETWORK");
    }
    const json = await response.json().catch(() => null);
    if (!response.ok) {
      throw new ParlorError(json?.error?.code || "INTERNAL", json?.error?.message);
    }
    return json;
  }

  _send(frame) {
    if (this._ws?.readyState !== WebSocket.OPEN || !this._welcomed) return false;
    this._ws.send(JSON.stringify(frame));
    return true;
  }

  /** Sends `refresh`; the server answers refreshes in order (`refreshed` or
   * an UNAUTHENTICATED error naming nothing), so a queue pairs them. */
  _sendRefresh(token, previous, waiters) {
    if (!this._send({ type: "refresh", token })) return false;
    this._refreshes.push({ token, previous, waiters });
    return true;
  }

  /** Notes when `token` expires (`at`: RFC 3339, or null) and plans its renewal. */
  _tokenExpires(token, at) {
    this._expiryOf = token;
    this.expiresAt = at ? Date.parse(at) : null;
    clearTimeout(this._renewal);
    this._renewal = null;
    if (!this.getToken || this.expiresAt === null) return;
    const left = this.expiresAt - Date.now();
    const ahead = Math.min(RENEW_AHEAD_MS, left / 5);
    this._renewal = setTimeout(() => this._renew(), Math.max(RENEW_MIN_MS, left - ahead));
  }

  /* Renews in place with a token from getToken(). If that fails, nothing
   * more is tried here: the server closes at the expiry (4401, lost) and the
   * reconnect asks getToken() again. */
  async _renew() {
    this._renewal = null;
    const token = await this._askToken();
    if (!token || token === this.token || this._closed) return;
    try {
      await this.refresh(token);
    } catch (err) {
      console.warn(`parlor: the server refused the renewed token: ${err.message}`);
    }
  }

  /** A token from getToken(), or null when it gave none or failed. */
  async _askToken() {
    try {
      return (await this.getToken()) || null;
    } catch (err) {
      console.warn(`parlor: getToken failed: ${err?.message || err}`);
      return null;
    }
  }

  /** Whether the token in use is past the expiry the server gave for it:
   * a hello with it would be refused, and that is final. */
  _tokenSpent() {
    return this._expiryOf === this.token && this.expiresAt !== null && Date.now() >= this.expiresAt;
  }

  /** Fires `token-expired`, once per token. */
  _tokenExpired() {
    if (this._expiredToken === this._expiryOf) return;
    this._expiredToken = this._expiryOf;
    this.dispatchEvent(new CustomEvent("token-expired"));
  }

  get _online() {
    return this.status === "online";
  }

  _setStatus(status) {
    if (this.status === status) return;
    this.status = status;
    this.dispatchEvent(new CustomEvent("status", { detail: status }));
  }

  _open() {
    if (this._closed || this._ws) return;
    clearTimeout(this._timer);
    this._setStatus(this.userId ? "reconnecting" : "connecting");
    const url = new URL("/v1/ws", this.baseUrl);
    url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
    const ws = new WebSocket(url);
    this._ws = ws;
    this._welcomed = false;
    this._refusal = null;
    ws.onopen = () => {
      this._helloToken = this.token;
      ws.send(JSON.stringify({ type: "hello", token: this.token }));
    };
    ws.onmessage = (event) => {
      if (ws !== this._ws) return;
      this._heardAt = Date.now();
      this._unansweredSince = null;
      this._frame(JSON.parse(event.data));
    };
    ws.onclose = (event) => this._lost(ws, event.code, event.reason);
    this._startHeartbeat();
  }

  /* The heartbeat. A browser never sees the server's WebSocket pings, so
   * the client sends its own `{"type":"ping"}` (answered by a `pong`) every
   * pingIntervalMs, and takes a socket that has brought nothing for longer
   * than pingIntervalMs + pingTimeoutMs as lost. It also waits for a ping
   * to go unanswered for pingTimeoutMs before judging: a background tab's
   * timers may run only once a minute, and then the silence is the tab's,
   * not the server's. */
  _startHeartbeat() {
    this._stopHeartbeat();
    const now = Date.now();
    this._heardAt = now;
    this._pingedAt = now;
    this._unansweredSince = null;
    const tick = Math.max(50, Math.min(1000, this.pingIntervalMs / 4, this.pingTimeoutMs / 4));
    this._heartbeat = setInterval(() => this._beat(), tick);
  }

  _stopHeartbeat() {
    clearInterval(this._heartbeat);
    this._heartbeat = null;
  }

  _beat() {
    const now = Date.now();
    const silent = now - this._heardAt > this.pingIntervalMs + this.pingTimeoutMs;
    const unanswered =
      !this._welcomed || // no ping before welcome: the silence alone tells
      (this._unansweredSince !== null && now - this._unansweredSince > this.pingTimeoutMs);
    if (silent && unanswered) {
      console.warn(`parlor: no word from the server for ${now - this._heardAt} ms; reconnecting`);
      this._drop("server silent");
      return;
    }
    if (this._welcomed && now - this._pingedAt >= this.pingIntervalMs) {
      this._pingedAt = now;
      this._unansweredSince ??= now;
      this._send({ type: "ping" });
    }
  }

  /** The browser says the network is gone: an open socket may linger for
   * minutes without noticing, so drop it now (the seat goes to grace). */
  _drop(reason) {
    const ws = this._ws;
    if (!ws) return;
    ws.onclose = ws.onmessage = null;
    try {
      ws.close(4000, reason);
    } catch {
      // Already closing.
    }
    this._lost(ws, 4000);
  }

  _reconnectNow() {
    if (this._closed || this._ws) return;
    this._attempt = 0;
    this._reopen();
  }

  /* Reconnects, with a fresh token from getToken() when there is one. A
   * token known to have expired is not offered to the server (it would
   * refuse it, for good): the client waits for a new one instead. */
  async _reopen() {
    if (this._closed || this._ws || this._reopening) return;
    if (this.getToken) {
      this._reopening = true;
      const token = await this._askToken();
      this._reopening = false;
      if (token) this.token = token;
      if (this._closed || this._ws) return;
    }
    if (this._tokenSpent()) {
      this._tokenExpired();
      if (this.getToken) this._retry(); // ask it again after the backoff
      else this._waitingForToken = true; // refresh(token) reconnects
      return;
    }
    this._waitingForToken = false;
    this._open();
  }

  /* Exponential backoff with full jitter, so a restarted server is not hit
   * by every client at the same instant. */
  _retry() {
    clearTimeout(this._timer);
    const ceiling = Math.min(BACKOFF_MAX_MS, BACKOFF_FIRST_MS * 2 ** this._attempt);
    this._attempt += 1;
    this._timer = setTimeout(() => this._reopen(), ceiling / 2 + (Math.random() * ceiling) / 2);
  }

  _lost(ws, code, reason = "") {
    if (ws !== this._ws) return;
    const welcomed = this._welcomed;
    this._ws = null;
    this._welcomed = false;
    this._stopHeartbeat();
    clearTimeout(this._renewal);
    // A refresh the socket took with it may or may not have been seen: the
    // next hello carries its token anyway.
    for (const sent of this._refreshes.splice(0)) this._tokenWaiters.push(...sent.waiters);
    for (const room of this.rooms.values()) room._disconnected();
    // 4401 has two meanings (docs/protocol.md). Before `welcome` the token
    // was refused: trying again cannot help. After it, the token expired
    // without a refresh (reason "token expired: …"): a lost connection,
    // which a fresh token resumes within the reconnect grace.
    const expired = code === 4401 && (welcomed || reason.startsWith("token expired"));
    if (code === 4401 && !expired) {
      this._closed = true;
      this._setStatus("signed-out");
      const err = this._refusal || new ParlorError("UNAUTHENTICATED");
      for (const waiter of this._waiters.splice(0)) waiter.reject(err);
      for (const waiter of this._tokenWaiters.splice(0)) waiter.reject(err);
      return;
    }
    if (expired) {
      // The server's clock is the one that counts.
      this.expiresAt = Math.min(this.expiresAt ?? Infinity, Date.now());
      this._tokenExpired();
    }
    if (this._closed) return;
    if (!navigator.onLine) {
      this._setStatus("offline"); // the `online` event reconnects
      return;
    }
    this._setStatus(this.userId ? "reconnecting" : "connecting");
    if (expired) this._reopen(); // at once, if a new token is at hand
    else this._retry();
  }

  _frame(frame) {
    switch (frame.type) {
      case "welcome":
        this.userId = frame.user_id;
        this._welcomed = true;
        if (frame.ping_interval_ms > 0) this.pingIntervalMs = frame.ping_interval_ms;
        if (frame.ping_timeout_ms >= 0) this.pingTimeoutMs = frame.ping_timeout_ms;
        this._startHeartbeat();
        this._attempt = 0;
        this._tokenExpires(this._helloToken, frame.expires_at);
        this._setStatus("online");
        for (const waiter of this._waiters.splice(0)) waiter.resolve(this);
        this._welcomeTokenWaiters();
        for (const room of this.rooms.values()) room._resume();
        break;
      case "refreshed": {
        const sent = this._refreshes.shift();
        if (!sent) break;
        this._tokenExpires(sent.token, frame.expires_at);
        for (const waiter of sent.waiters) waiter.resolve(this.expiresAt);
        break;
      }
      case "joined":
        this.rooms.get(frame.room_id)?._joined(frame);
        break;
      case "entry":
        this.rooms.get(frame.room_id)?._entry(frame);
        break;
      case "signal":
        this.rooms.get(frame.room_id)?._signal(frame);
        break;
      case "read_state":
        this.rooms.get(frame.room_id)?._readState(frame);
        break;
      case "ack":
        this.rooms.get(frame.room_id)?._ack(frame);
        break;
      case "left":
        this.rooms.get(frame.room_id)?._left();
        break;
      case "error":
        this._error(frame);
        break;
      case "pong": // heard: that is all a pong is for
        break;
    }
  }

  /** The refresh() calls that waited for this welcome. One made while the
   * socket was saying hello with an older token renews it now. */
  _welcomeTokenWaiters() {
    const waiters = this._tokenWaiters.splice(0);
    if (this.token === this._helloToken) {
      for (const waiter of waiters) waiter.resolve(this.expiresAt);
    } else {
      this._sendRefresh(this.token, this._helloToken, waiters);
    }
  }

  _error(frame) {
    const err = new ParlorError(frame.code, frame.message);
    if (!this._welcomed && frame.code === "UNAUTHENTICATED") {
      this._refusal = err; // close 4401 follows
      return;
    }
    if (frame.code === "UNAUTHENTICATED" && !frame.ticket && !frame.room_id && !frame.client_id) {
      // A refused `refresh`: the old token and its expiry stand.
      const sent = this._refreshes.shift();
      if (!sent) return;
      if (this.token === sent.token) this.token = sent.previous;
      for (const waiter of sent.waiters) waiter.reject(err);
      return;
    }
    const room = frame.ticket
      ? [...this.rooms.values()].find((r) => r._ticket === frame.ticket)
      : this.rooms.get(frame.room_id);
    if (!room) return;
    if (frame.ticket) room._joinFailed(err);
    else if (frame.client_id) room._sendFailed(frame.client_id, err);
    else if (room.status === "joined" && MOMENTARY_REFUSALS.has(frame.code)) {
      // A refused signal or read (too fast, muted, a bad name): the room
      // is fine; the page may listen, nothing sticks on the room.
      room.dispatchEvent(new CustomEvent("refused", { detail: err }));
    } else room._fail(err);
  }
}

/**
 * One room as this client sees it. Events: `change` after anything below
 * changed. Fields are read-only for the page.
 */
export class Room extends EventTarget {
  constructor(client, id, create) {
    super();
    this.client = client;
    this.id = id;
    this.title = null;
    this.capacity = null;
    this.occupancy = null;
    /** Users with a joined (or reconnecting) seat, sorted: in a room of
     * more than 100, the first 100 by id at the join and those who joined
     * since (the rest through the members route). */
    this.members = [];
    /** How many users hold a joined (or reconnecting) seat: `joined`'s
     * `member_count`, then one more per `join` and one less per `leave`. */
    this.memberCount = 0;
    /** "joining" | "joined" | "rejoining" | "left" | "error" */
    this.status = "joining";
    /** The last error that stopped the room, as a ParlorError. */
    this.error = null;
    /** Own messages not yet in the log, in send order:
     * {clientId, body, status: "sending" | "sent" | "failed", error}. */
    this.outbox = [];
    /** Whether older entries may exist before the first one held. */
    this.hasEarlier = true;
    this.joinedOnce = false;
    this._create = create;
    this._entries = new Map(); // seq → entry
    this._lastSeq = null; // the stream position: every seq up to here is held
    this._membersAt = 0;
    this._ticket = null;
    this._waiters = [];
    this._refresh = null;
    this._typing = new Map(); // user → timer that clears them
    this._typingSentAt = 0;
    this._typingShown = false; // a `typing` went out with no `stopped_typing` since
    /** The user's read marker here, and the others' messages after it
     * (docs/contract.md §2, "Read markers"): from the room's facts, then
     * counted live and corrected by each `read_state`. */
    this.lastReadSeq = 0;
    this.unread = 0;
    /** Whether you may moderate here (kick, ban, delete others' messages):
     * from the room's facts. */
    this.canModerate = false;
  }

  /** Marks the room read up to `seq` (the last entry held by default); the
   * server answers with the read state. A lower seq changes nothing. */
  markRead(seq = this._lastSeq) {
    if (seq === null || seq <= this.lastReadSeq || this.status !== "joined") return;
    this.lastReadSeq = seq;
    this.unread = this.entries.filter((e) => e.seq > seq && this._counts(e)).length;
    this.client._send({ type: "read", room_id: this.id, seq });
    this._changed();
  }

  /** This room's path in the HTTP API, with `rest` after it. */
  _path(rest = "") {
    return `/rooms/${encodeURIComponent(this.id)}${rest}`;
  }

  /** Whether an entry counts as unread: someone else's message, not erased. */
  _counts(entry) {
    return (entry.kind === "text" || entry.kind === "system") && entry.sender !== this.client.userId && !entry.redacted;
  }

  _readState(state) {
    // A lower marker is an answer to an older read that crossed a newer one.
    if (state.last_read_seq < this.lastReadSeq) return;
    this.lastReadSeq = state.last_read_seq;
    this.unread = state.unread;
    this._changed();
  }

  /** Others typing in the room now, sorted. */
  get typingUsers() {
    return [...this._typing.keys()].sort();
  }

  /** Call as the user types: tells the others (`typing`) when a spell of
   * typing starts, then at most every 3 s while it lasts. */
  typing() {
    const now = Date.now();
    if (this.status !== "joined") return;
    if (this._typingShown && now - this._typingSentAt < TYPING_EVERY_MS) return;
    this._typingSentAt = now;
    this._typingShown = true;
    this.signal("typing");
  }

  /** Call when the user stops (the composer emptied, the message sent):
   * `stopped_typing`, if the others may still show a `typing` (sent in the
   * last 6 s). A signal the server refuses as too fast is dropped (an
   * event `refused`), never an error on the room. */
  stoppedTyping() {
    if (!this._typingShown) return;
    this._typingShown = false;
    if (Date.now() - this._typingSentAt < TYPING_SHOWN_MS) this.signal("stopped_typing");
  }

  /** Sends a signal (`typing`, `stopped_typing`, an app's `x-…` name) to the
   * room's other members; never stored. Dropped while not joined. */
  signal(name, data) {
    if (this.status !== "joined") return;
    const frame = { type: "signal", room_id: this.id, name };
    if (data !== undefined) frame.data = data;
    this.client._send(frame);
  }

  /** Entries held, ascending by seq (text, join and leave). */
  get entries() {
    return [...this._entries.values()].sort((a, b) => a.seq - b.seq);
  }

  /** The last seq received on the stream: where a resume starts. */
  get lastSeq() {
    return this._lastSeq;
  }

  /** Sends `body`; returns its client id. It shows in `outbox` at once. */
  send(body) {
    const item = { clientId: newClientId(), body, status: "sending", error: null };
    this.outbox.push(item);
    this.client._saveNow();
    this._transmit(item);
    this._changed();
    return item.clientId;
  }

  /** Sends a failed message again, with the same client id, after the others. */
  retry(clientId) {
    const index = this.outbox.findIndex((m) => m.clientId === clientId);
    if (index < 0) return;
    const [item] = this.outbox.splice(index, 1);
    Object.assign(item, { status: "sending", error: null });
    this.outbox.push(item);
    this._transmit(item);
    this._changed();
  }

  /** Edits your message at `seq` (docs/contract.md §2, "Edits and
   * redactions"): an `edit` entry is appended, and every page holding the
   * message shows the new body when it arrives. Throws ParlorError. */
  async edit(seq, body) {
    return this.client.http("PATCH", this._path(`/messages/${seq}`), { body });
  }

  /** Deletes the message at `seq` (yours, or any as a moderator): its text
   * is erased from storage and every page shows it deleted. Throws ParlorError. */
  async redact(seq, reason) {
    return this.client.http(
      "DELETE",
      this._path(`/messages/${seq}`),
      reason ? { reason } : {},
    );
  }

  /** Takes `user`'s seat away (you moderate the room); every page sees
   * them leave, `kicked`. They may join again. Throws ParlorError. */
  async kick(user, reason) {
    await this.client.http("POST", this._path(`/kicks/${encodeURIComponent(user)}`), reason ? { reason } : {});
  }

  /** Bans `user` (you moderate the room): kicked if here, refused until
   * `until` (RFC 3339; for good without it). Throws ParlorError. */
  async ban(user, { until, reason } = {}) {
    await this.client.http("PUT", this._path(`/bans/${encodeURIComponent(user)}`), { until, reason });
  }

  /** Drops a failed message from the outbox (it was never stored). */
  discard(clientId) {
    const before = this.outbox.length;
    this.outbox = this.outbox.filter((m) => m.clientId !== clientId || m.status !== "failed");
    if (this.outbox.length !== before) this._changed();
  }

  /** Reads the page of history before the oldest entry held. */
  async loadEarlier(limit = HISTORY_PAGE) {
    const oldest = this._entries.size ? Math.min(...this._entries.keys()) : (this._lastSeq ?? 0) + 1;
    if (oldest <= 1) {
      this.hasEarlier = false;
      this._changed();
      return;
    }
    const { messages } = await this.client.http(
      "GET",
      this._path(`/messages?before_seq=${oldest}&limit=${limit}`),
    );
    for (const entry of messages) this._entries.set(entry.seq, entry);
    this.hasEarlier = messages.length === limit && messages[0].seq > 1;
    this._changed();
  }

  /** Leaves the room: the seat is freed and a `leave` entry appended. */
  leave() {
    this.client._send({ type: "leave", room_id: this.id });
    this._left();
  }

  async _start() {
    if (this.status === "joined") return;
    const joined = new Promise((resolve, reject) => this._waiters.push({ resolve, reject }));
    if (this.client._online) this._resume();
    return joined;
  }

  /** (Re)joins over a fresh ticket, resuming after the last seq held. */
  async _resume() {
    if (this.status === "left") return;
    const socket = this.client._ws;
    let reservation;
    try {
      const create = this.joinedOnce ? undefined : this._create;
      reservation = await this.client.http(
        "POST",
        this._path("/reservations"),
        create ? { create } : {},
      );
    } catch (err) {
      // A join() waiting for this call gets its failure, whatever it is.
      // Otherwise (a rejoin after a reconnect) a network failure means the
      // socket is going too, and its reconnect retries.
      if (err.code !== "NETWORK" || this._waiters.length > 0) this._fail(err);
      return;
    }
    if (socket !== this.client._ws) return; // reconnected meanwhile; that run rejoins
    this._ticket = reservation.ticket;
    const frame = { type: "join", ticket: reservation.ticket };
    if (this._lastSeq !== null) frame.after_seq = this._lastSeq;
    this.client._send(frame);
  }

  _joined(frame) {
    this._ticket = null;
    this.capacity = frame.capacity;
    this.occupancy = frame.occupancy;
    this.members = [...frame.members];
    this.memberCount = frame.member_count ?? frame.members.length;
    // Backlog entries up to here are already counted in `members`.
    this._membersAt = frame.last_seq;
    const first = this._lastSeq === null;
    if (first) this._lastSeq = frame.last_seq;
    this.status = "joined";
    this.error = null;
    this.joinedOnce = true;
    for (const item of this.outbox) if (item.status === "sending") this._transmit(item);
    for (const waiter of this._waiters.splice(0)) waiter.resolve(this);
    this._scheduleRefresh();
    // A first join, or a page that came back from a reload, shows the
    // latest page of history.
    if (first || this._restored) this.loadEarlier().catch(() => {});
    this._restored = false;
    this._changed();
  }

  _entry(entry) {
    if (this._lastSeq !== null && entry.seq <= this._lastSeq) return; // seen already
    if (this._lastSeq !== null && entry.seq !== this._lastSeq + 1) {
      console.warn(`parlor: room ${this.id} skipped from seq ${this._lastSeq} to ${entry.seq}`);
    }
    this._entries.set(entry.seq, entry);
    this._lastSeq = entry.seq;
    if (entry.kind === "text" && entry.sender === this.client.userId) {
      this.outbox = this.outbox.filter((m) => m.clientId !== entry.client_id);
    }
    if (entry.kind === "text" || entry.kind === "leave") this._stopTyping(entry.sender);
    if (entry.seq > this.lastReadSeq && this._counts(entry)) this.unread += 1;
    // An edit or a redaction changes the message it names, in place
    // (docs/contract.md §2, "Edits and redactions").
    const target = entry.target_seq !== undefined ? this._entries.get(entry.target_seq) : undefined;
    if (entry.kind === "edit" && target && !target.redacted && !entry.redacted) {
      this._entries.set(target.seq, { ...target, body: entry.body, data: entry.data, edited_at: entry.created_at });
    }
    if (entry.kind === "redaction" && target) {
      const { body, data, ...kept } = target;
      this._entries.set(target.seq, { ...kept, redacted: true });
    }
    if ((entry.kind === "join" || entry.kind === "leave") && entry.seq > this._membersAt) {
      const others = this.members.filter((m) => m !== entry.sender);
      const complete = this.memberCount <= this.members.length;
      this.members = entry.kind === "join" ? [...others, entry.sender].sort() : others;
      // A log has a `join` only for a non-member and a `leave` only for a
      // member (docs/contract.md §2, "Members"). While the list holds
      // everyone it is the count; past 100 names the entries move it (a
      // join racing this client's own may be counted twice until the next
      // join: presence has the exact figure).
      this.memberCount = complete
        ? this.members.length
        : Math.max(0, this.memberCount + (entry.kind === "join" ? 1 : -1));
      this._scheduleRefresh();
    }
    this._changed();
  }

  _signal(signal) {
    if (signal.name === "typing") {
      clearTimeout(this._typing.get(signal.user_id));
      const clear = setTimeout(() => this._stopTyping(signal.user_id), TYPING_SHOWN_MS);
      this._typing.set(signal.user_id, clear);
    } else if (signal.name === "stopped_typing") {
      this._stopTyping(signal.user_id);
      return;
    }
    this.dispatchEvent(new CustomEvent("signal", { detail: signal }));
    this._changed();
  }

  _stopTyping(user) {
    if (!this._typing.has(user)) return;
    clearTimeout(this._typing.get(user));
    this._typing.delete(user);
    this._changed();
  }

  _ack(ack) {
    const item = this.outbox.find((m) => m.clientId === ack.client_id);
    if (!item) return;
    if (this._entries.has(ack.seq)) {
      this.outbox = this.outbox.filter((m) => m !== item);
    } else {
      // Durable; its entry is on the way in the stream.
      Object.assign(item, { status: "sent", seq: ack.seq });
    }
    this._changed();
  }

  _sendFailed(clientId, err) {
    const item = this.outbox.find((m) => m.clientId === clientId);
    if (item) Object.assign(item, { status: "failed", error: err });
    if (err.code === "NOT_A_MEMBER") this._fail(err);
    this._changed();
  }

  _joinFailed(err) {
    this._ticket = null;
    this._fail(err);
  }

  _fail(err) {
    this.error = err;
    if (this.status !== "joined" || err.code === "NOT_A_MEMBER") this.status = "error";
    for (const waiter of this._waiters.splice(0)) waiter.reject(err);
    this._changed();
  }

  _left() {
    this.status = "left";
    this.client.rooms.delete(this.id);
    this._changed();
  }

  _disconnected() {
    if (this.status === "joined") this.status = "rejoining";
    // In-flight sends are re-sent on rejoin; "sent" ones are already durable.
    this._changed();
  }

  _transmit(item) {
    if (this.status !== "joined") return; // queued: _joined sends it
    this.client._send({ type: "send", room_id: this.id, client_id: item.clientId, body: item.body });
  }

  /** Occupancy counts reserved seats too, which no entry shows: ask. */
  _scheduleRefresh() {
    clearTimeout(this._refresh);
    this._refresh = setTimeout(async () => {
      try {
        const info = await this.client.http("GET", this._path());
        Object.assign(this, {
          title: info.title,
          capacity: info.capacity,
          occupancy: info.occupancy,
          canModerate: info.can_moderate === true,
        });
        if ((info.last_read_seq ?? 0) >= this.lastReadSeq && info.unread !== undefined) {
          this.lastReadSeq = info.last_read_seq;
          this.unread = info.unread;
        }
        this._changed();
      } catch {
        // Shown again on the next change.
      }
    }, 150);
  }

  _changed() {
    this.client._saveSoon();
    this.dispatchEvent(new Event("change"));
  }
}
