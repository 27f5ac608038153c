// Parlor's GraphQL transport with the npm `graphql-ws` client, as an
// Apollo/urql app would use it. Usage: node graphql_ws.mjs http://127.0.0.1:PORT
//
// Two users reserve over HTTP, subscribe to joinRoom, and send 100 messages
// between them; both must receive all 100 in seq order, each exactly once.
// Then alice completes her subscription: her seat is freed and bob sees
// her LEAVE entry. Exits non-zero, saying why, on any failure.
import { createClient } from 'graphql-ws';
import WebSocket from 'ws';

const base = process.argv[2];
if (!base) throw new Error('usage: node graphql_ws.mjs http://host:port');
const room = `npm-${process.pid}`;
const JOIN = `subscription($t: String!) { joinRoom(ticket: $t) {
  __typename
  ... on Joined { roomId occupancy lastSeq members }
  ... on Entry { seq kind sender clientId body } } }`;

async function http(path, token, body) {
  const res = await fetch(`${base}${path}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  const json = await res.json();
  if (!res.ok || json.errors) throw new Error(`${path}: ${res.status} ${JSON.stringify(json)}`);
  return json;
}

const gql = (token, query, variables) => http('/graphql', token, { query, variables });

function subscriber(user, ticket) {
  const client = createClient({
    url: `${base.replace('http', 'ws')}/graphql/ws`,
    webSocketImpl: WebSocket,
    connectionParams: { authorization: `Bearer dev:${user}` },
    retryAttempts: 0,
  });
  const events = [];
  let wake = () => {};
  const done = new Promise((resolve, reject) => {
    const stop = client.subscribe(
      { query: JOIN, variables: { t: ticket } },
      {
        next: (msg) => {
          if (msg.errors) return reject(new Error(`${user}: ${JSON.stringify(msg.errors)}`));
          events.push(msg.data.joinRoom);
          wake();
        },
        error: (err) => reject(err),
        complete: () => resolve(),
      },
    );
    subscriber.stops.set(user, stop);
  });
  done.catch(() => {});
  const until = async (pred, what) => {
    const deadline = Date.now() + 20000;
    while (!pred(events)) {
      if (Date.now() > deadline) throw new Error(`${user}: timed out waiting for ${what}; got ${JSON.stringify(events.slice(-3))}`);
      await new Promise((r) => { wake = r; setTimeout(r, 200); });
    }
  };
  return { client, events, until, done };
}
subscriber.stops = new Map();

function check(user, events) {
  const entries = events.filter((e) => e.__typename === 'Entry');
  const seqs = entries.map((e) => e.seq);
  for (let i = 1; i < seqs.length; i++) {
    if (seqs[i] !== seqs[i - 1] + 1) throw new Error(`${user}: gap or duplicate at ${seqs[i - 1]} → ${seqs[i]}`);
  }
  const texts = entries.filter((e) => e.kind === 'TEXT');
  const ids = new Set(texts.map((e) => `${e.sender}/${e.clientId}`));
  if (texts.length !== 100 || ids.size !== 100) throw new Error(`${user}: ${texts.length} texts, ${ids.size} distinct`);
}

const aliceTicket = (await http(`/v1/rooms/${room}/reservations`, 'dev:alice', { create: { capacity: 5 } })).ticket;
const alice = subscriber('alice', aliceTicket);
await alice.until((e) => e.length >= 1, 'Joined');
if (alice.events[0].__typename !== 'Joined') throw new Error('alice: the first event must be Joined');
const bobTicket = (await http(`/v1/rooms/${room}/reservations`, 'dev:bob', {})).ticket;
const bob = subscriber('bob', bobTicket);
await bob.until((e) => e.length >= 1, 'Joined');

const SEND = 'mutation($r: ID!, $c: String!, $b: String!) { sendMessage(roomId: $r, clientId: $c, body: $b) { seq } }';
await Promise.all(['alice', 'bob'].map(async (user) => {
  for (let i = 0; i < 50; i++) await gql(`dev:${user}`, SEND, { r: room, c: `${user}-${i}`, b: `${user} says ${i}` });
}));
const hundred = (e) => e.filter((x) => x.kind === 'TEXT').length >= 100;
await alice.until(hundred, '100 messages');
await bob.until(hundred, '100 messages');
check('alice', alice.events);
check('bob', bob.events);

// Complete alice's subscription: a leave.
subscriber.stops.get('alice')();
await bob.until((e) => e.some((x) => x.kind === 'LEAVE' && x.sender === 'alice'), "alice's LEAVE");
const info = await gql('dev:bob', 'query($r: ID!) { room(id: $r) { occupancy } }', { r: room });
if (info.data.room.occupancy !== 1) throw new Error(`occupancy ${info.data.room.occupancy}, expected 1 after alice completed`);

await alice.client.dispose();
await bob.client.dispose();
console.log(`graphql-ws: 2 subscribers × 100 messages in order, once each; complete freed the seat (${room})`);
