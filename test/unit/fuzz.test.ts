/**
 * Fuzzing the API (core/api.ts) with fast-check: thousands of generated bad requests, each
 * answered with the contract's shape for its code, never a 5xx, and leaving nothing stored or
 * queued; and every valid submission accepted with the request it describes.
 */
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import type { ApiRequest } from '../../lambdas/core/api.ts';
import { callApi } from '../support/api.ts';
import { FailureLimiter } from '../../lambdas/core/auth.ts';
import { EgressPolicy } from '../../lambdas/core/egress.ts';
import type { Answer } from '../../lambdas/core/errors.ts';
import { jobLimits } from '../../lib/definitions.ts';
import { ManualClock, MemoryClientStore, MemoryFailureCounter, memoryApiDeps, testClient } from '../support/memory.ts';
import { ambiguousUrl, anyString, notJsonObjectText, parsesAsUrl } from '../support/hostile.ts';
import { urlRules } from '../../lambdas/core/urls.ts';
import { expectContractAnswer } from '../support/contract.ts';

/* ------------------------------------------------------------------------------------------ *
 * The world each run gets: a fresh store and queue, one client, the egress policy with nothing
 * private allowed (checked on the URL only: no DNS in a unit test).
 * ------------------------------------------------------------------------------------------ */

const alice = testClient('11111111111111');
const basicAuth = `Basic ${Buffer.from(`${alice.client.clientId}:${alice.token}`).toString('base64')}`;
const policy = EgressPolicy.fromEnv('');

function world() {
  const clock = new ManualClock(Date.parse('2025-03-04T05:06:07.089Z'));
  const clients = new MemoryClientStore();
  clients.clients.set(alice.client.clientId, alice.client);
  const { jobs, queue, deps } = memoryApiDeps(clock, clients, {
    refuse: async (url) => {
      const verdict = policy.checkUrl(url);
      return verdict.allowed ? undefined : verdict.reason;
    },
    limiter: new FailureLimiter(new MemoryFailureCounter(), { clock }),
  });
  const send = (request: Partial<ApiRequest>) => callApi(deps, { method: 'POST', path: '/webhook', query: {}, headers: {}, body: undefined, ...request });
  return { clock, jobs, queue, deps, send };
}

/* ------------------------------------------------------------------------------------------ *
 * JSON text with hostile parts: a value may be raw text (1e400, a nesting bomb), and an object
 * may hold "__proto__" or a key twice, which a JS object literal cannot express.
 * ------------------------------------------------------------------------------------------ */

class Raw {
  constructor(readonly text: string) {}
}
/** An object as its list of entries: keys kept verbatim (including __proto__) and in order. */
class Entries {
  constructor(readonly entries: ReadonlyArray<readonly [string, Json]>) {}
}
type Json = null | boolean | number | string | Raw | Entries | Json[] | { [key: string]: Json };

function text(value: Json): string {
  if (value instanceof Raw) return value.text;
  if (value instanceof Entries) return `{${value.entries.map(([k, v]) => `${JSON.stringify(k)}:${text(v)}`).join(',')}}`;
  if (Array.isArray(value)) return `[${value.map(text).join(',')}]`;
  if (value !== null && typeof value === 'object') return text(new Entries(Object.entries(value)));
  return JSON.stringify(value);
}

/* ------------------------------------------------------------------------------------------ *
 * The contract's answers.
 * ------------------------------------------------------------------------------------------ */


/** The answer has the contract's shape for its status code, and is never a 5xx. */
function expectContractShape(answer: Answer): void {
  // What the Lambda handler sends is this object's JSON text.
  expect(JSON.parse(JSON.stringify(answer.body))).toStrictEqual(answer.body);
  expectContractAnswer(answer.statusCode, answer.body, { success: true });
}

/** Nothing was stored, remembered or queued. */
function expectNothingKept(w: ReturnType<typeof world>): void {
  expect(w.jobs.jobs.size).toBe(0);
  expect(w.jobs.requests.size).toBe(0);
  expect(w.jobs.idempotency.size).toBe(0);
  expect(w.queue.sent).toEqual([]);
}

/* Object.prototype as it was before any hostile input; compared after every property. */
const prototypeKeys = Object.getOwnPropertyNames(Object.prototype).sort();
const pollutionMarkers = ['polluted', 'isAdmin', 'service', 'headers', 'client_id', 'verify_token', 'status'];
function expectNoPollution(): void {
  expect(Object.getOwnPropertyNames(Object.prototype).sort()).toEqual(prototypeKeys);
  const probe: Record<string, unknown> = {};
  for (const marker of pollutionMarkers) expect(probe[marker], marker).toBeUndefined();
}

afterAll(() => expectNoPollution());

/** How many generated cases each property ran, for the report. */
const ran: Record<string, number> = {};
afterAll(() => {
  const total = Object.values(ran).reduce((a, b) => a + b, 0);
  console.log(JSON.stringify({ fuzzCases: ran, total }));
});
const count = (name: string) => () => {
  ran[name] = (ran[name] ?? 0) + 1;
};

/* ------------------------------------------------------------------------------------------ *
 * Building blocks.
 * ------------------------------------------------------------------------------------------ */

const methods = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'HEAD', 'OPTIONS'] as const;
/** The contract's list, written out again: a name added to or dropped from the code shows up here. */
const forbiddenNames = ['host', 'content-length', 'transfer-encoding', 'connection', 'upgrade', 'te', 'trailer', 'keep-alive'];
const isForbidden = (name: string) => forbiddenNames.includes(name.toLowerCase()) || name.toLowerCase().startsWith('proxy-');
const tchars = "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
const isToken = (name: string) => name.length > 0 && [...name].every((c) => tchars.includes(c));

const service = 'https://service.example.com/hook';
const callback = 'https://callback.example.com/done';

/** Any string at all: lone surrogates, NUL, CR/LF, astral characters, U+FFFD. */

/** Text nested `depth` deep: `[[[…]]]`, `{"a":{"a":…}}`, or left open. */
const nestingBomb = (min: number, max: number) =>
  fc.tuple(fc.integer({ min, max }), fc.constantFrom('array', 'object', 'open array', 'open object')).map(([depth, shape]) => {
    switch (shape) {
      case 'array':
        return '['.repeat(depth) + ']'.repeat(depth);
      case 'object':
        return '{"a":'.repeat(depth) + '1' + '}'.repeat(depth);
      case 'open array':
        return '['.repeat(depth);
      default:
        return '{"a":'.repeat(depth);
    }
  });

/** A JSON value that is not a string, of any shape. */
const nonString = fc.oneof(
  fc.integer(),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
  fc.boolean(),
  fc.array(fc.jsonValue({ maxDepth: 2 }), { maxLength: 3 }),
  fc.dictionary(fc.string({ maxLength: 5 }), fc.jsonValue({ maxDepth: 1 }), { maxKeys: 3 }),
  fc.constantFrom(new Raw('1e400'), new Raw('-1e400'), new Raw('[[[[[[[[[[]]]]]]]]]]')),
) as fc.Arbitrary<Json>;

const randomCase = (word: string) =>
  fc.array(fc.boolean(), { minLength: word.length, maxLength: word.length }).map((upper) => [...word].map((c, i) => (upper[i] ? c.toUpperCase() : c.toLowerCase())).join(''));

const tokenName = fc.string({ unit: fc.constantFrom(...tchars), minLength: 1, maxLength: 16 }).filter((name) => !isForbidden(name) && name !== '__proto__');
/** RFC 9110 field-content: what any HTTP client can send. */
const fieldValue = fc.string({ unit: fc.constantFrom('\t', ' ', 'a', 'Z', '0', '~', '"', '\u00e9', '\u00ff', '\u0080', '=', ';', ','), maxLength: 40 });
const secretMarker = fc.string({ unit: fc.constantFrom(...'abcdefghijklmnopqrstuvwxyz0123456789'), minLength: 12, maxLength: 12 }).map((s) => `secret-${s}`);

/* ------------------------------------------------------------------------------------------ *
 * Bad fields: each case breaks exactly one field of an otherwise valid submission, and says
 * how the 400 must name it.
 * ------------------------------------------------------------------------------------------ */

interface BadField {
  /** The field replaced (or the Idempotency-Key header). */
  field: string;
  value: Json;
  /** The 400's message must match this. */
  message: RegExp;
  /** The message must include this (a header's name) … */
  mentions?: string;
  /** … and must not include this (a header's value: it may be a secret). */
  secret?: string;
}

const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** URLs that are not absolute http(s) URLs with a host, or that the egress policy refuses as written. */
const badUrl = (field: 'service' | 'callback'): fc.Arbitrary<BadField> => {
  const named = new RegExp(`^${field}( |: )`);
  const notUrl = fc.oneof(
    fc.tuple(fc.constantFrom('ftp', 'file', 'gopher', 'javascript', 'data', 'ws', 'wss', 'mailto', 'ldap', 'dict', 'jar', 'tel', 'localhost', 'HTTPS+X'), fc.webUrl()).map(([scheme, url]) => `${scheme}${url.slice(url.indexOf(':'))}`),
    fc.webPath().map((path) => `/${path}`),
    fc.domain().map((domain) => `${domain}/hook`),
    anyString(30).filter((s) => !(parsesAsUrl(s) && /^https?:$/.test(new URL(s).protocol))),
    fc.constantFrom(
      '',
      '   ',
      'http://',
      'https://',
      'http://:80/',
      'http://exa mple.com/',
      'http://a<b.example/',
      'http://[::1/',
      'http://[1::2::3]/',
      'http://999.1.1.1/',
      'http://1.2.3.4.5/',
      'http://0x100000000/',
      'http://%zz/',
      'http://a%00b/',
      'http://xn--a/',
      'http://[fe80::1%25eth0]/',
      'javascript:alert(1)//https://example.com',
      'data:text/html,<script>alert(1)</script>',
    ),
    fc.integer({ min: jobLimits.urlChars + 1, max: jobLimits.urlChars + 3000 }).map((n) => `https://example.com/${'a'.repeat(n - 20)}`),
  );
  const refused = fc.constantFrom(
    'http://10.0.0.1/',
    'http://[::1]/',
    'http://[::ffff:7f00:1]/',
    'http://169.254.169.254/latest/meta-data/',
    'http://localhost/',
    'http://foo.localhost:8080/',
    'http://[fd00::1]/',
    'http://0.0.0.0/',
    'http://192.168.1.1/',
  );
  // Spellings WHATWG reads as a refused address: refused before the egress policy is asked.
  const misspelt = fc.constantFrom('http://127.1/', 'http://0x7f000001/', 'http://[::ffff:127.0.0.1]/', 'http://0/', 'http://017700000001/', 'http://\u2460\u2461\u2466.0.0.1/', 'http://127.0.0.1./');
  const ruleMessages = Object.values(urlRules).map((rule) => (typeof rule === 'string' ? rule : rule('', '').split('""')[0] ?? ''));
  const namesARule = new RegExp(`^${field}: (${ruleMessages.map(escape).join('|')})`);
  return fc.oneof(
    (field === 'service' ? fc.oneof(nonString, fc.constant(null)) : nonString).map((value) => ({ field, value, message: named })),
    notUrl.map((value) => ({ field, value, message: named })),
    refused.map((value) => ({ field, value, message: new RegExp(`^${field}: egress policy: `) })),
    misspelt.map((value) => ({ field, value, message: namesARule })),
    ambiguousUrl(field === 'service' ? 'service.example.com' : 'callback.example.com:8443').map(({ url }) => ({ field, value: url, message: namesARule })),
  );
};

const badMethod: fc.Arbitrary<BadField> = fc
  .oneof(
    fc.oneof(nonString, fc.constant(null)),
    anyString(12).filter((s) => !(methods as readonly string[]).includes(s.toUpperCase())),
    fc.constantFrom('', ' GET', 'GET ', 'CONNECT', 'TRACE', 'G\u0000ET', 'POST\r\n', '\uFF27\uFF25\uFF34', 'get\n', 'PROPFIND', 'M-SEARCH', 'po\u017ft', 'opt\u0131ons', 'OPT\u0131ONS'),
  )
  .map((value) => ({ field: 'methodtype', value, message: /^methodtype must be one of GET, POST, PUT, PATCH, DELETE, HEAD, OPTIONS$/ }));

const badHeaders: fc.Arbitrary<BadField> = fc.oneof(
  fc
    .oneof(fc.oneof(nonString, fc.constant(null)).filter((v) => !(v !== null && typeof v === 'object' && !Array.isArray(v) && !(v instanceof Raw))), anyString())
    .map((value) => ({ field: 'headers', value, message: /^headers must be an object of string to string$/ })),
  fc.tuple(tokenName, nonString).map(([name, value]) => ({ field: 'headers', value: new Entries([['X-Ok', 'fine'], [name, value]]), message: /^headers/ })),
  fc.tuple(anyString(20).filter((name) => !isToken(name) && name !== '__proto__'), fieldValue).map(([name, value]) => ({
    field: 'headers',
    value: new Entries([[name, value]]),
    message: /^headers: .* is not a valid header name \(RFC 9110 token\)$/s,
    mentions: JSON.stringify(name),
  })),
  fc
    .oneof(fc.constantFrom(...forbiddenNames).chain(randomCase), tokenName.map((rest) => `proxy-${rest}`).chain(randomCase))
    .map((name) => ({ field: 'headers', value: { [name]: 'x' }, message: /^headers: .* is not allowed/, mentions: JSON.stringify(name) })),
  fc.tuple(tokenName, fieldValue, fc.constantFrom('\r', '\n', '\0', '\r\n', '\r\nHost: evil.example\r\n'), secretMarker).map(([name, prefix, bad, secret]) => ({
    field: 'headers',
    value: { [name]: `${prefix}${secret}${bad}${secret}` },
    message: /^headers: the value of .* must not contain CR, LF or NUL$/,
    mentions: JSON.stringify(name),
    secret,
  })),
  fc.integer({ min: jobLimits.maxHeaders + 1, max: jobLimits.maxHeaders + 40 }).map((n) => ({
    field: 'headers',
    value: Object.fromEntries(Array.from({ length: n }, (_, i) => [`X-H${i}`, 'v'])),
    message: /^headers may hold at most 50 headers$/,
  })),
  fc.integer({ min: 2, max: 6 }).map((n) => ({
    field: 'headers',
    value: Object.fromEntries(Array.from({ length: n }, (_, i) => [`X-Big${i}`, 'b'.repeat(Math.ceil(jobLimits.headerBytes / n) + 1)])),
    message: /^headers may total at most 16384 bytes$/,
  })),
);

const badNumber = (field: string, range: { min: number; max: number }): fc.Arbitrary<BadField> =>
  fc
    .oneof(
      fc.integer({ min: -1e9, max: range.min - 1 }),
      fc.integer({ min: range.max + 1, max: 2 ** 31 - 1 }),
      fc.constantFrom(2 ** 53, 2 ** 53 + 2, Number.MAX_VALUE),
      fc.double({ min: range.min, max: range.max, noNaN: true }).filter((x) => !Number.isInteger(x)),
      fc.integer(range).map(String),
      fc.integer(range).map((n) => `${n}.0`),
      fc.integer(range).map((n) => [n]),
      fc.integer(range).map((n) => ({ value: n })),
      fc.boolean(),
      fc.constant(null),
      fc.constantFrom(new Raw('1e400'), new Raw('-1e400'), new Raw('1e-400'), new Raw('-0'), new Raw(String(2 ** 64)), new Raw('1.0000000000000001e3')),
    )
    .filter((value) => !(value instanceof Raw && Number.isInteger(Number(value.text)) && Number(value.text) >= range.min && Number(value.text) <= range.max))
    .map((value) => ({ field, value: value as Json, message: new RegExp(`^${field} must be an integer from ${range.min} to ${range.max}$`) }));

const badIdempotencyKey: fc.Arbitrary<BadField> = fc
  .oneof(
    fc.constant(''),
    fc.integer({ min: 256, max: 2000 }).map((n) => 'k'.repeat(n)),
    fc.tuple(fc.string({ unit: fc.constantFrom('a', 'b', '1'), maxLength: 10 }), fc.constantFrom(' ', '\t', '\u00e9', '\u0000', '\r\n', '\u{1F600}', '\u007f', '\uD800')).map(([s, bad]) => `${s}${bad}${s}`),
  )
  .map((value) => ({ field: 'Idempotency-Key', value, message: /^Idempotency-Key: must be 1 to 255 visible ASCII characters$/ }));

const badField = fc.oneof(
  badUrl('service'),
  badUrl('callback'),
  badMethod,
  badHeaders,
  badNumber('max_attempts', jobLimits.maxAttempts),
  badNumber('timeout_ms', jobLimits.timeoutMs),
  badNumber('callback_max_attempts', jobLimits.callbackMaxAttempts),
  badIdempotencyKey,
);

/* ------------------------------------------------------------------------------------------ *
 * Properties over bad input.
 * ------------------------------------------------------------------------------------------ */

describe('fuzzing the API with bad requests: never a 5xx, the contract\'s answer, nothing stored', () => {
  it('a body that is not a JSON object is the 422 on every route, before credentials are looked at', async () => {
    const notObject = fc.oneof(
      notJsonObjectText(60),
      fc.jsonValue({ maxDepth: 3 }).map((v) => `${JSON.stringify({ service, data: v })}`.slice(0, -1)),
      fc.constantFrom(
        "{'service': 'https://example.com'}",
        '{"service": "https://example.com",}',
        '{"service": NaN}',
        '{"service": undefined}',
        '{service: "https://example.com"}',
        '{"a": 1} // comment',
        '{"a": 1}{"b": 2}',
        '\uFEFF{"service":"https://example.com"}',
        '{"a":"\u0000"}',
        '{"a": 0x10}',
        '{"a": .5}',
        '{"a": 01}',
        '"\uD800"',
        '\uFFFD\uFFFD\uFFFD',
      ),
      nestingBomb(10_000, 100_000).filter((bomb) => (!bomb.startsWith('{"a":') || !bomb.endsWith('}')) && bomb.length <= jobLimits.requestBodyBytes),
    );
    await fc.assert(
      fc.asyncProperty(notObject, fc.constantFrom('POST /webhook', 'GET /webhook', 'GET /status'), fc.boolean(), async (body, route, withAuth) => {
        count('not a JSON object')();
        const w = world();
        const [method = '', path = ''] = route.split(' ');
        const answer = await w.send({ method, path, body, headers: withAuth ? { authorization: basicAuth } : {} });
        expectContractShape(answer);
        expect(answer.statusCode).toBe(422);
        expectNothingKept(w);
      }),
      { numRuns: 1000 },
    );
    expectNoPollution();
  });

  it('a submission with one wrong-typed, out-of-range or hostile field is a 400 naming that field', async () => {
    await fc.assert(
      fc.asyncProperty(badField, fc.boolean(), fc.boolean(), async (bad, credentialsInBody, withCallback) => {
        count('one bad field')();
        const w = world();
        const entries: Array<[string, Json]> = [['service', service]];
        if (withCallback) entries.push(['callback', callback]);
        if (credentialsInBody) entries.push(['client_id', alice.client.clientId], ['verify_token', alice.token]);
        const headers: Record<string, string> = credentialsInBody ? {} : { authorization: basicAuth };
        if (bad.field === 'Idempotency-Key') headers['idempotency-key'] = String(bad.value);
        else {
          const at = entries.findIndex(([key]) => key === bad.field);
          if (at >= 0) entries[at] = [bad.field, bad.value];
          else entries.push([bad.field, bad.value]);
        }
        const answer = await w.send({ body: text(new Entries(entries)), headers });
        expectContractShape(answer);
        expect(answer.statusCode, JSON.stringify(answer.body)).toBe(400);
        const message = String(answer.body['message']);
        expect(message).toMatch(bad.message);
        if (bad.mentions !== undefined) expect(message).toContain(bad.mentions);
        if (bad.secret !== undefined) expect(message).not.toContain(bad.secret);
        expectNothingKept(w);
      }),
      { numRuns: 1500 },
    );
    expectNoPollution();
  });

  it('a field given twice is judged by its last value, as JSON.parse reads it', async () => {
    await fc.assert(
      fc.asyncProperty(badField.filter((bad) => bad.field !== 'Idempotency-Key'), async (bad) => {
        count('duplicate keys')();
        const w = world();
        const good: Json = bad.field === 'service' ? service : bad.field === 'callback' ? callback : bad.field === 'headers' ? { 'X-Ok': 'fine' } : bad.field === 'methodtype' ? 'PUT' : bad.field === 'timeout_ms' ? 1000 : 3;
        const body = text(new Entries([['service', service], [bad.field, good], [bad.field, bad.value]]));
        const answer = await w.send({ body, headers: { authorization: basicAuth } });
        expectContractShape(answer);
        expect(answer.statusCode).toBe(400);
        expect(String(answer.body['message'])).toMatch(bad.message);
        expectNothingKept(w);
      }),
      { numRuns: 200 },
    );
  });

  it('bad credentials are the 401, wherever they are given and however they are malformed', async () => {
    const wrongToken = fc.oneof(anyString(60), fc.stringMatching(/^[0-9a-f]{48}$/)).filter((t) => t !== alice.token);
    const otherId = fc.oneof(anyString(20), fc.stringMatching(/^[0-9]{14}$/), fc.constant('x'.repeat(200)), fc.constant('')).filter((id) => id !== alice.client.clientId);
    const b64 = (s: string) => Buffer.from(s).toString('base64');
    type Given = { headers: Record<string, string>; body: Record<string, Json> };
    const given = (headers: Record<string, string>, body: Record<string, Json> = {}): Given => ({ headers, body });
    const credentials: fc.Arbitrary<Given> = fc.oneof(
      fc.constant(given({})),
      wrongToken.map((token) => given({ authorization: `Basic ${b64(`${alice.client.clientId}:${token}`)}` })),
      otherId.map((id) => given({ authorization: `Basic ${b64(`${id}:${alice.token}`)}` })),
      anyString(80).filter((h) => !h.includes(b64(`${alice.client.clientId}:${alice.token}`))).map((authorization) => given({ authorization })),
      fc.uint8Array({ maxLength: 64 }).map((bytes) => given({ authorization: `Basic ${Buffer.from(bytes).toString('base64')}` })),
      fc.constantFrom(
        `Basic ${b64(alice.client.clientId)}`,
        `Basic ${b64(`${alice.client.clientId}:`)}`,
        `Basic ${b64(`:${alice.token}`)}`,
        `Bearer ${alice.token}`,
        `Basic ${alice.client.clientId}:${alice.token}`,
        `Basic ${b64(`${alice.client.clientId}:${alice.token}`)}!`,
        `Basic ${b64(`${alice.client.clientId}:${alice.token} `)}`,
        `Basic ${b64(`${alice.client.clientId}:${alice.token.toUpperCase()}`)}`,
        `Digest username="${alice.client.clientId}"`,
      ).map((authorization) => given({ authorization })),
      // Credentials in the body and in Basic must agree: neither wins, whichever is right.
      fc.tuple(wrongToken, fc.boolean()).map(([token, alsoBasic]) => given(alsoBasic ? { authorization: basicAuth } : {}, { client_id: alice.client.clientId, verify_token: token })),
      wrongToken.map((token) => given({ authorization: `Basic ${b64(`${alice.client.clientId}:${token}`)}` }, { client_id: alice.client.clientId, verify_token: alice.token })),
      otherId.filter((id) => !id.includes(':')).map((id) => given({ authorization: `Basic ${b64(`${id}:${alice.token}`)}` }, { client_id: alice.client.clientId, verify_token: alice.token })),
      fc.tuple(fc.oneof(nonString, fc.constant(null)), fc.boolean()).map(([value, whichOne]) =>
        given({ authorization: basicAuth }, whichOne ? { client_id: value, verify_token: alice.token } : { client_id: alice.client.clientId, verify_token: value }),
      ),
      fc.constantFrom<Record<string, Json>>({ client_id: alice.client.clientId }, { verify_token: alice.token }).map((body) => given({ authorization: basicAuth }, body)),
    );
    await fc.assert(
      fc.asyncProperty(credentials, fc.constantFrom('POST /webhook', 'GET /webhook', 'GET /status'), async ({ headers, body }, route) => {
        count('bad credentials')();
        const w = world();
        const [method = '', path = ''] = route.split(' ');
        const answer = await w.send({ method, path, headers, body: text({ service, job_id: '00000000-0000-4000-8000-000000000000', ...body }) });
        expectContractShape(answer);
        expect(answer.statusCode).toBe(401);
        expectNothingKept(w);
      }),
      { numRuns: 600 },
    );
  });

  it('hostile but well-formed JSON (nesting bombs, __proto__, constructor, prototype) never gets a 5xx nor pollutes a prototype', async () => {
    const hostileKey = fc.oneof(
      fc.constantFrom('service', 'methodtype', 'headers', 'callback', 'data', 'max_attempts', 'timeout_ms', 'callback_max_attempts', 'job_id'),
      fc.constantFrom('__proto__', 'constructor', 'prototype', 'toString', 'valueOf', 'hasOwnProperty', '__defineGetter__', 'isAdmin', 'polluted'),
      anyString(10),
    );
    const proto = fc.constantFrom<Json>(
      new Entries([['__proto__', { polluted: 'yes', isAdmin: true, service: 'http://10.0.0.1/', status: 'hacked' }]]),
      new Entries([['constructor', { prototype: { polluted: 'yes' } }]]),
      new Entries([['__proto__', new Entries([['__proto__', { polluted: 'deep' }]])]]),
      new Entries([['prototype', { polluted: 'yes' }]]),
    );
    const hostileValue: fc.Arbitrary<Json> = fc.oneof(
      fc.jsonValue({ maxDepth: 3 }) as fc.Arbitrary<Json>,
      anyString(200),
      proto,
      nestingBomb(1_000, 40_000).filter((b) => !b.startsWith('{"a":') || b.endsWith('}')).filter((b) => !b.startsWith('[') || b.endsWith(']')).map((b) => new Raw(b)),
      fc.constantFrom(new Raw('1e400'), new Raw('-0'), new Raw('1e-400'), new Raw('"\\ud800"'), new Raw('"\\u0000"')),
    );
    const body = fc.oneof(
      fc.array(fc.tuple(hostileKey, hostileValue), { maxLength: 6 }).map((entries) => new Entries(entries)),
      fc.array(fc.tuple(hostileKey, hostileValue), { maxLength: 4 }).map((entries) => new Entries([['service', service], ...entries])),
      proto,
    );
    await fc.assert(
      fc.asyncProperty(body, fc.constantFrom('POST /webhook', 'GET /webhook', 'GET /status'), async (value, route) => {
        count('hostile JSON')();
        const w = world();
        const [method = '', path = ''] = route.split(' ');
        const raw = text(value);
        const answer = await w.send({ method, path, headers: { authorization: basicAuth }, body: raw });
        expectContractShape(answer);
        if (Buffer.byteLength(raw) > jobLimits.requestBodyBytes) expect(answer.statusCode).toBe(413);
        if (answer.statusCode === 202) {
          // Only a valid submission gets here: stored once, queued once, with what it asked for.
          expect(w.jobs.jobs.size).toBe(1);
          expect(w.queue.sent).toHaveLength(1);
          const [job] = [...w.jobs.jobs.values()];
          expect(job?.service).toBe((JSON.parse(raw) as Record<string, unknown>)['service']);
        } else {
          expectNothingKept(w);
        }
        expectNoPollution();
      }),
      { numRuns: 1000 },
    );
  });

  it('bodies over 256 KiB are the 413 whatever they hold; up to 256 KiB they are read', async () => {
    const limit = jobLimits.requestBodyBytes;
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: -64, max: 64 }), fc.constantFrom('a', '\u00e9', '\u20ac', '\u{1F600}'), fc.boolean(), async (offset, pad, valid) => {
        count('size limit')();
        const w = world();
        const skeleton = valid ? JSON.stringify({ service, data: '' }) : `{"service":5,"data":"",}`;
        // Fill to limit + offset bytes with `pad`, then top up with ASCII for the last few bytes.
        const target = limit + offset;
        const room = target - Buffer.byteLength(skeleton);
        const padBytes = Buffer.byteLength(pad);
        const filler = pad.repeat(Math.floor(room / padBytes)) + 'a'.repeat(room % padBytes);
        const body = valid ? JSON.stringify({ service, data: filler }) : `{"service":5,"data":"${filler}",}`;
        const bytes = Buffer.byteLength(body);
        expect(bytes).toBe(target);
        const answer = await w.send({ body, headers: { authorization: basicAuth } });
        expectContractShape(answer);
        if (bytes > limit) {
          expect(answer.statusCode).toBe(413);
          expectNothingKept(w);
        } else {
          expect(answer.statusCode).toBe(valid ? 202 : 422);
          expect(w.jobs.jobs.size).toBe(valid ? 1 : 0);
        }
      }),
      { numRuns: 120 },
    );
    // Far over the limit, and not even JSON: the size is judged first.
    const w = world();
    for (const body of ['x'.repeat(limit + 1), '['.repeat(limit + 1), '\uD800'.repeat(limit / 2)]) {
      const answer = await w.send({ body });
      expectContractShape(answer);
      expect(answer.statusCode).toBe(413);
    }
    expectNothingKept(w);
  });

  it('unknown routes and wrong methods are a 404', async () => {
    const knownPath = fc.constantFrom('/webhook', '/status', '/health', '/webhook/', '/status//');
    const wrongMethod = fc.tuple(fc.oneof(anyString(10), fc.constantFrom('PUT', 'DELETE', 'PATCH', 'HEAD', 'OPTIONS', 'TRACE', 'CONNECT')), knownPath).filter(([method, path]) => {
      const route = `${method.toUpperCase()} ${path.replace(/\/+$/, '')}`;
      return !['POST /webhook', 'GET /webhook', 'GET /status', 'GET /health'].includes(route);
    });
    const unknownPath = fc.tuple(fc.constantFrom('GET', 'POST'), fc.oneof(fc.webPath(), anyString(30)).map((p) => (p.startsWith('/') ? p : `/${p}`))).filter(([, path]) => {
      const trimmed = path.replace(/\/+$/, '') || '/';
      return !['/webhook', '/status', '/health'].includes(trimmed);
    });
    await fc.assert(
      fc.asyncProperty(fc.oneof(wrongMethod, unknownPath), fc.oneof(fc.constant(undefined), fc.constant(JSON.stringify({ service }))), async ([method, path], body) => {
        count('unknown route')();
        const w = world();
        const answer = await w.send({ method, path, body, headers: { authorization: basicAuth } });
        expectContractShape(answer);
        expect(answer.statusCode).toBe(404);
        expectNothingKept(w);
      }),
      { numRuns: 300 },
    );
  });

  it('GET /status with a malformed or unknown job id is "No job with that ID exists"', async () => {
    const jobId = fc.oneof(
      anyString(50),
      fc.uuid({ version: 4 }),
      fc.uuid({ version: 4 }).map((id) => `${id} `),
      fc.uuid({ version: 4 }).map((id) => id.replace(/-/g, '')),
      fc.constantFrom('../../etc/passwd', '*', '%', '00000000-0000-4000-8000-000000000000\u0000', "' OR '1'='1"),
    );
    await fc.assert(
      fc.asyncProperty(fc.oneof(jobId.map((id) => ({ id: id as Json, inQuery: false })), jobId.map((id) => ({ id: id as Json, inQuery: true })), nonString.map((id) => ({ id, inQuery: false }))), async ({ id, inQuery }) => {
        count('unknown job id')();
        const w = world();
        const answer = await w.send({
          method: 'GET',
          path: '/status',
          headers: { authorization: basicAuth },
          query: inQuery ? { job_id: String(id) } : {},
          body: inQuery ? undefined : text({ job_id: id }),
        });
        expectContractShape(answer);
        expect(answer.statusCode).toBe(404);
        expect(answer.body).toStrictEqual({ status: 'No job with that ID exists' });
      }),
      { numRuns: 300 },
    );
  });
});

/* ------------------------------------------------------------------------------------------ *
 * Valid submissions.
 * ------------------------------------------------------------------------------------------ */

/**
 * A public-looking URL: a name (no IP literal), never a loopback name, written as WHATWG writes
 * it, less the characters WHATWG keeps but other parsers encode (core/urls.ts refuses them).
 */
const publicUrl = fc
  .webUrl({ validSchemes: ['http', 'https'], withQueryParameters: true, withFragments: true })
  .map((url) => new URL(url).href)
  .filter((url) => url.length <= jobLimits.urlChars && !/localhost/i.test(new URL(url).hostname) && !/['|^"<>`{}\\]|%(?![0-9A-Fa-f]{2})/.test(url));

const headerName = fc.oneof(tokenName, fc.constantFrom('Content-Type', 'content-type', 'IDEMPOTENCY-KEY', 'Idempotency-Key', 'User-Agent', 'Authorization', 'x-api-key'));

const validSubmission = fc.record(
  {
    service: publicUrl,
    methodtype: fc.constantFrom(...methods).chain(randomCase),
    headers: fc.dictionary(headerName, fieldValue, { maxKeys: 10 }),
    callback: fc.oneof(publicUrl, fc.constant(null)),
    data: fc.oneof(fc.constant(null), fc.string({ unit: 'binary', maxLength: 100 }), fc.jsonValue({ maxDepth: 3 })),
    max_attempts: fc.integer(jobLimits.maxAttempts),
    timeout_ms: fc.integer(jobLimits.timeoutMs),
    callback_max_attempts: fc.integer(jobLimits.callbackMaxAttempts),
  },
  { requiredKeys: ['service'] },
);

describe('fuzzing the API with valid submissions', () => {
  it('every valid submission is a 202 and a stored request that follows the rules', async () => {
    const uuidV4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
    const idempotencyKey = fc.option(fc.string({ unit: fc.constantFrom(...'!~azAZ09-_./:'), minLength: 1, maxLength: 255 }), { nil: undefined });
    await fc.assert(
      fc.asyncProperty(validSubmission, fc.boolean(), idempotencyKey, async (input, credentialsInBody, key) => {
        count('valid submission')();
        const w = world();
        const payload = credentialsInBody ? { ...input, client_id: alice.client.clientId, verify_token: alice.token } : input;
        const headers: Record<string, string> = credentialsInBody ? {} : { authorization: basicAuth };
        if (key !== undefined) headers['idempotency-key'] = key;
        const answer = await w.send({ body: JSON.stringify(payload), headers });
        expectContractShape(answer);
        expect(answer.statusCode, JSON.stringify(answer.body)).toBe(202);
        expect(Object.keys(answer.body).sort()).toEqual(['created', 'job_id', 'status']);
        expect(answer.body['status']).toBe('accepted');
        expect(answer.body['created']).toBe(new Date(w.clock.now()).toISOString());
        const jobId = String(answer.body['job_id']);
        expect(jobId).toMatch(uuidV4);
        expect(w.queue.sent).toEqual([{ kind: 'job', jobId, leaseMs: expect.any(Number) }]);
        expect(w.jobs.idempotency.size).toBe(key === undefined ? 0 : 1);

        const job = await w.jobs.get(jobId);
        const request = await w.jobs.getRequest(jobId);
        const data = (JSON.parse(JSON.stringify(payload)) as Record<string, unknown>)['data'];
        const method = input.methodtype?.toUpperCase() ?? 'POST';
        expect(job).toMatchObject({
          jobId,
          clientId: alice.client.clientId,
          service: input.service,
          methodtype: method,
          callback: input.callback ?? null,
          status: 'accepted',
          attempts: 0,
          output: null,
          maxAttempts: input.max_attempts ?? jobLimits.maxAttempts.default,
          timeoutMs: input.timeout_ms ?? jobLimits.timeoutMs.default,
          callbackMaxAttempts: input.callback_max_attempts ?? jobLimits.callbackMaxAttempts.default,
          notified: input.callback ? 'no' : 'n/a',
        });

        // The request: the client's headers verbatim, plus the two we add when it did not set them.
        const expected: Record<string, string> = { ...input.headers };
        const has = (name: string) => Object.keys(expected).some((k) => k.toLowerCase() === name);
        const json = data !== undefined && data !== null && typeof data !== 'string';
        if (json && !has('content-type')) expected['Content-Type'] = 'application/json';
        if (!has('idempotency-key')) expected['Idempotency-Key'] = jobId;
        expect(request?.url).toBe(input.service);
        expect(request?.method).toBe(method);
        expect(request?.headers).toStrictEqual(expected);
        expect(request?.body).toBe(data === undefined || data === null ? null : typeof data === 'string' ? data : JSON.stringify(data));
        for (const [name, value] of Object.entries(request?.headers ?? {})) {
          expect(isToken(name) && !isForbidden(name), name).toBe(true);
          expect(value).not.toMatch(/[\r\n\0]/);
        }
      }),
      { numRuns: 1000 },
    );
    expectNoPollution();
  });
});

/* ------------------------------------------------------------------------------------------ *
 * Found by fuzzing.
 * ------------------------------------------------------------------------------------------ */

describe('headers the fuzzer found accepted although they cannot be what the client asked for', () => {
  it('a "__proto__" header is refused with a 400, not silently dropped from a 202 job', async () => {
    // zod's record skips a "__proto__" key without validating its value, so these parse as
    // `headers: {}`; the job would run without the header the client asked for.
    for (const headers of ['{"__proto__":{"polluted":"yes"}}', '{"__proto__":["x"]}', '{"__proto__":"x"}', '{"X-Ok":"fine","__proto__":null}']) {
      const w = world();
      const answer = await w.send({ body: `{"service":"${service}","headers":${headers}}`, headers: { authorization: basicAuth } });
      expectContractShape(answer);
      expect({ headers, status: answer.statusCode }).toEqual({ headers, status: 400 });
      expect(String(answer.body['message'])).toMatch(/^headers/);
      expectNothingKept(w);
      expectNoPollution();
    }
  });

  it('a header value no HTTP client can send (a control character, a code point above U+00FF) is a 400, not a job that fails every attempt', async () => {
    // RFC 9110 field-content is HTAB, SP, VCHAR and obs-text (0x80-0xFF). undici refuses
    // anything else with UND_ERR_INVALID_ARG on every attempt, after the job was accepted.
    for (const value of ['a\u0001b', 'a\u007fb', 'a\u001bb', '\u20ac100', 'caf\u00e9 \u{1F600}', 'x\uD800']) {
      const w = world();
      const answer = await w.send({ body: JSON.stringify({ service, headers: { 'X-Value': value } }), headers: { authorization: basicAuth } });
      expectContractShape(answer);
      expect({ value, status: answer.statusCode }).toEqual({ value, status: 400 });
      expect(String(answer.body['message'])).toMatch(/^headers: .*"X-Value"/);
      expectNothingKept(w);
    }
  });
});
