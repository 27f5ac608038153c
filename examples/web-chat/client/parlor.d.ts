// Types of parlor.js (the Parlor browser client). Shapes follow
// docs/contract.md; README.md beside this file documents the behaviour.

/** A contract error code (docs/contract.md §7), or NETWORK for a call that never reached the server. */
export type ErrorCode =
  | "UNAUTHENTICATED"
  | "FORBIDDEN"
  | "INVALID_INPUT"
  | "ROOM_NOT_FOUND"
  | "ROOM_FULL"
  | "ROOM_PENDING"
  | "TICKET_INVALID"
  | "TICKET_EXPIRED"
  | "ROOM_CLOSED"
  | "KICKED"
  | "ENTRY_NOT_FOUND"
  | "HISTORY_PRUNED"
  | "NOT_A_MEMBER"
  | "MESSAGE_TOO_LARGE"
  | "RATE_LIMITED"
  | "UNAVAILABLE"
  | "INTERNAL"
  | "NETWORK";

/** Words for each error code, for people rather than programs. */
export const ERROR_TEXT: Readonly<Record<string, string>>;

/** An error with a contract code and the server's message. */
export class ParlorError extends Error {
  constructor(code: ErrorCode | string, message?: string);
  readonly code: ErrorCode | string;
  /** The error in words: the code's text, plus the server's detail for INVALID_INPUT. */
  readonly text: string;
}

/** An app's JSON object attached to a message or a signal. */
export type Data = Record<string, unknown>;

/** One log entry (docs/contract.md §3). */
export interface Entry {
  room_id: string;
  seq: number;
  id: string;
  kind: "text" | "join" | "leave" | "system" | "edit" | "redaction";
  sender: string;
  client_id?: string | null;
  body?: string | null;
  data?: Data | null;
  /** A leave's reason (`kicked`, `room_closed`, …). */
  reason?: string | null;
  /** The message an edit or a redaction changes. */
  target_seq?: number;
  edited_at?: string;
  redacted?: boolean;
  /** RFC 3339, UTC. */
  created_at: string;
}

/** A message of yours not yet in the log. */
export interface OutboxItem {
  clientId: string;
  body: string;
  status: "sending" | "sent" | "failed";
  error: ParlorError | null;
  /** Set once acked (`sent`). */
  seq?: number;
}

/** Another member's signal (docs/contract.md §2, "Signals"). */
export interface Signal {
  room_id: string;
  user_id: string;
  name: string;
  data?: Data;
  at: string;
}

export type ClientStatus = "connecting" | "online" | "reconnecting" | "offline" | "signed-out" | "closed";
export type RoomStatus = "joining" | "joined" | "rejoining" | "left" | "error";

export interface ClientOptions {
  /** A JWT, or `dev:<user>` under --dev-auth. */
  token: string;
  /** The server's http(s) origin; the page's by default. */
  baseUrl?: string;
  /** Gives a fresh token for the same user: before each reconnect, and shortly before expiry. */
  getToken?: (() => Promise<string>) | null;
  /** Where to keep the rooms joined and unsent messages for `restore()` after a reload. */
  storage?: Storage | null;
}

/** One user's connection: one WebSocket shared by every room. Events: `status`, `token-expired`. */
export class ParlorClient extends EventTarget {
  constructor(options: ClientOptions);
  token: string;
  getToken: (() => Promise<string>) | null;
  storage: Storage | null;
  readonly baseUrl: string;
  readonly status: ClientStatus;
  /** Set by the server's `welcome`. */
  readonly userId: string | null;
  /** When the token in use expires, in ms since the epoch, or null. */
  readonly expiresAt: number | null;
  readonly rooms: Map<string, Room>;
  /** The heartbeat, in ms (from `welcome`). */
  readonly pingIntervalMs: number;
  readonly pingTimeoutMs: number;
  /** Opens the socket; resolves at the first `welcome`, rejects on a refused token. */
  connect(): Promise<ParlorClient>;
  /** Renews the token in place; resolves with the new expiry (ms since the epoch) or null. */
  refresh(token: string): Promise<number | null>;
  /** Closes for good (close 1000), which leaves every room at once. */
  close(): void;
  /** Rejoins the rooms the previous page saved in `storage`, on the same seats within the grace. */
  restore(): Promise<Room[]>;
  /** Forgets what `storage` holds for this user. */
  forget(): void;
  /** Reserves a seat and joins; with `create` the room is created if it does not exist. */
  join(roomId: string, options?: { create?: { capacity: number; title?: string; private?: boolean } }): Promise<Room>;
  /** An HTTP call to the server's /v1 API; throws ParlorError. */
  http<T = unknown>(method: string, path: string, body?: unknown): Promise<T>;
  addEventListener(
    type: "status" | "token-expired",
    listener: (event: CustomEvent) => void,
    options?: boolean | AddEventListenerOptions,
  ): void;
  addEventListener(
    type: string,
    listener: EventListenerOrEventListenerObject | null,
    options?: boolean | AddEventListenerOptions,
  ): void;
}

/** A joined room: its log held in seq order, once each. Events: `change`, `signal`, `refused`. */
export class Room extends EventTarget {
  readonly client: ParlorClient;
  readonly id: string;
  readonly title: string | null;
  readonly capacity: number | null;
  readonly occupancy: number | null;
  /** Users with a joined (or reconnecting) seat, sorted: in a room of more
   * than 100, the first 100 by id at the join and those who joined since. */
  readonly members: string[];
  /** How many users hold a joined (or reconnecting) seat. */
  readonly memberCount: number;
  readonly status: RoomStatus;
  readonly error: ParlorError | null;
  readonly outbox: OutboxItem[];
  readonly hasEarlier: boolean;
  readonly joinedOnce: boolean;
  /** Your read marker here, and the others' messages after it. */
  readonly lastReadSeq: number;
  readonly unread: number;
  /** Whether you may moderate here (kick, ban, delete others' messages). */
  readonly canModerate: boolean;
  /** Entries held, ascending by seq. */
  readonly entries: Entry[];
  /** The last seq received on the stream: where a resume starts. */
  readonly lastSeq: number | null;
  /** Others typing now, sorted. */
  readonly typingUsers: string[];
  /** Sends `body`; returns its client id. It shows in `outbox` at once. */
  send(body: string): string;
  /** Sends a failed message again, same client id. */
  retry(clientId: string): void;
  /** Drops a failed message from the outbox. */
  discard(clientId: string): void;
  /** Edits your message at `seq`; resolves with the `edit` entry. Throws ParlorError. */
  edit(seq: number, body: string): Promise<Entry>;
  /** Deletes (redacts) the message at `seq`; resolves with the `redaction` entry. Throws ParlorError. */
  redact(seq: number, reason?: string): Promise<Entry>;
  /** Takes `user`'s seat away (you moderate the room). Throws ParlorError. */
  kick(user: string, reason?: string): Promise<void>;
  /** Bans `user` until `until` (RFC 3339; for good without it). Throws ParlorError. */
  ban(user: string, options?: { until?: string; reason?: string }): Promise<void>;
  /** Reads the page of history before the oldest entry held. */
  loadEarlier(limit?: number): Promise<void>;
  /** Moves your read marker (never back); the last entry held by default. */
  markRead(seq?: number): void;
  /** Call as the user types: `typing` at most every 3 s. */
  typing(): void;
  /** Call when the user stops: `stopped_typing`. */
  stoppedTyping(): void;
  /** Sends any signal (`x-…` names are the app's own); never stored. */
  signal(name: string, data?: Data): void;
  /** Frees the seat (a `leave` entry is appended). */
  leave(): void;
  addEventListener(type: "change", listener: (event: Event) => void, options?: boolean | AddEventListenerOptions): void;
  /** Another member's signal other than `stopped_typing` (which only clears `typingUsers`). */
  addEventListener(
    type: "signal",
    listener: (event: CustomEvent<Signal>) => void,
    options?: boolean | AddEventListenerOptions,
  ): void;
  /** A refused `signal` or `read` of this (joined) room: too fast, muted, a bad name. */
  addEventListener(
    type: "refused",
    listener: (event: CustomEvent<ParlorError>) => void,
    options?: boolean | AddEventListenerOptions,
  ): void;
  addEventListener(
    type: string,
    listener: EventListenerOrEventListenerObject | null,
    options?: boolean | AddEventListenerOptions,
  ): void;
}
