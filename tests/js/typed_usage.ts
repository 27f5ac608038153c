// A typed app using @parlor/client the way a front-end would: `tsc --noEmit`
// (run by `cargo test -p parlor-tests --test parlor_js_types`) checks it
// against examples/web-chat/client/parlor.d.ts. The `@ts-expect-error`
// lines must stay errors: they show the declarations are not `any`.

import {
  ParlorClient,
  ParlorError,
  Room,
  type Entry,
  type OutboxItem,
  type Signal,
} from "../../examples/web-chat/client/parlor.js";

export async function chat(render: (entries: Entry[], outbox: OutboxItem[]) => void): Promise<Room> {
  const client = new ParlorClient({
    token: "dev:alice",
    baseUrl: "http://127.0.0.1:8080",
    getToken: async () => "dev:alice",
    storage: sessionStorage,
  });
  client.addEventListener("status", () => console.log(client.status));
  await client.connect();
  const back: Room[] = await client.restore();
  const room = back[0] ?? (await client.join("lobby", { create: { capacity: 10, title: "Lobby" } }));
  room.addEventListener("change", () => render(room.entries, room.outbox), { passive: true });
  room.addEventListener("refused", (event) => console.log(event.detail.code));
  room.addEventListener("signal", (event) => {
    const signal: Signal = event.detail;
    console.log(`${signal.user_id}: ${signal.name}`);
  });
  const clientId: string = room.send("hello");
  room.typing();
  room.stoppedTyping();
  room.signal("x-reaction", { emoji: "👍" });
  room.markRead();
  const unread: number = room.unread;
  const typing: string[] = room.typingUsers;
  const last: number | null = room.lastSeq;
  for (const item of room.outbox) {
    if (item.status === "failed" && item.error?.code === "MESSAGE_TOO_LARGE") room.discard(item.clientId);
    else if (item.status === "failed") room.retry(item.clientId);
  }
  await room.loadEarlier(50);
  const edited: Entry = await room.edit(3, "fixed");
  const erased: Entry = await room.redact(edited.seq, "oops");
  console.log(erased.target_seq);
  if (room.canModerate) {
    await room.kick("mallory", "spam");
    await room.ban("mallory", { until: "2030-01-01T00:00:00Z" });
  }
  const facts = await client.http<{ unread?: number }>("GET", `/rooms/${room.id}`);
  console.log(clientId, unread, typing, last, facts.unread, client.userId, client.expiresAt);
  try {
    await client.join("full-room");
  } catch (err) {
    if (err instanceof ParlorError) console.log(err.code, err.text);
  }

  // @ts-expect-error a message body is a string
  room.send(42);
  // @ts-expect-error a room's status is one of five words
  const wrong: "open" = room.status;
  // @ts-expect-error join's options are named
  await client.join("lobby", 10);
  console.log(wrong);
  return room;
}
