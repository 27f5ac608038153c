// The GraphQL-over-HTTP spec's own audit suite (npm `graphql-http`,
// `auditServer`) against Parlor's `/graphql`. Usage:
//   node graphql_http_audit.mjs http://127.0.0.1:PORT [token]
// With a token, every request carries `Authorization: Bearer <token>`.
// Prints one line per audit that is not `ok` (id, status, name, reason),
// then `audit: <ok> ok, <warn> warnings, <error> errors`; exits non-zero
// when there is any warning or error.
import { auditServer } from 'graphql-http';

const base = process.argv[2];
if (!base) throw new Error('usage: node graphql_http_audit.mjs http://host:port [token]');
const token = process.argv[3];

const fetchFn = (input, init = {}) => {
  if (!token) return fetch(input, init);
  const headers = new Headers(init.headers);
  headers.set('authorization', `Bearer ${token}`);
  return fetch(input, { ...init, headers });
};

const results = await auditServer({ url: `${base}/graphql`, fetchFn });
const count = { ok: 0, warn: 0, error: 0 };
for (const r of results) {
  count[r.status] += 1;
  if (r.status !== 'ok') {
    const reason = typeof r.reason === 'string' ? r.reason : JSON.stringify(r.reason);
    console.log(`${r.id} ${r.status}: ${r.name}\n    ${reason}`);
  }
}
console.log(`audit: ${count.ok} ok, ${count.warn} warnings, ${count.error} errors`);
process.exit(count.warn + count.error === 0 ? 0 : 1);
