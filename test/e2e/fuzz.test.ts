/**
 * Fuzzing the real local stack over HTTP: hundreds of generated bad requests (raw bodies that are
 * not JSON, nesting bombs, wrong types, forbidden headers, oversize bodies, invalid UTF-8 bytes,
 * bad credentials) aimed at a sentinel target the stack is allowed to reach. None may get a 5xx
 * or a 202, and the sentinel must receive nothing.
 */
import fc from 'fast-check';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jobLimits } from '../../lib/definitions.ts';
import { basic, call, clients, demo, removeDir, startStack, startTarget, waitFor, waitForJob, type RunningStack, type Target } from './harness.ts';
import { ambiguousUrl, anyString, notJsonObjectText } from '../support/hostile.ts';
import { expectContractAnswer } from '../support/contract.ts';

let stack: RunningStack;
/** Reachable under the local stack's default EGRESS_ALLOW_CIDRS: a bad request let through would land here. */
let sentinel: Target;
const auth = basic(demo.clientId, demo.verifyToken);
/**
 * The client whose credentials are guessed at. Repeated failures for one id from one address are
 * answered 429 (the failure limiter), so the guessing aims at a client of its own and the demo
 * client, which sends every other request, is never slowed down.
 */
let victim: { clientId: string; verifyToken: string };

beforeAll(async () => {
  [stack, sentinel] = await Promise.all([startStack(), startTarget()]);
  const created = clients(stack.dataDir, 'create', '--name', 'fuzz-victim');
  const json = created.json as { client_id?: string; verify_token?: string } | undefined;
  if (created.status !== 0 || !json?.client_id || !json.verify_token) throw new Error(`clients create failed: ${created.stderr}`);
  victim = { clientId: json.client_id, verifyToken: json.verify_token };
});

afterAll(async () => {
  await stack?.stop();
  await sentinel?.close();
  if (stack) removeDir(stack.dataDir);
});

interface Reply {
  status: number;
  text: string;
}

/** A request with a raw body (text or bytes), as any HTTP client could send it. */
async function send(method: 'GET' | 'POST', path: string, body: string | Buffer | undefined, headers: Record<string, string>): Promise<Reply> {
  const response = await request(`${stack.url}${path}`, { method, headers: { 'content-type': 'application/json', ...headers }, body: body ?? null });
  return { status: response.statusCode, text: await response.body.text() };
}


/** The contract's shape for the answer's code; never a 5xx, never a 202 to a bad request. */
function expectContractShape(reply: Reply): void {
  expectContractAnswer(reply.status, JSON.parse(reply.text) as Record<string, unknown>, { gateway: true });
}

/* ------------------------------------------------------------------------------------------ *
 * Generated bad requests: each says which answers it may get.
 * ------------------------------------------------------------------------------------------ */

interface Case {
  kind: string;
  method: 'GET' | 'POST';
  path: string;
  body: string | Buffer | undefined;
  headers: Record<string, string>;
  expected: readonly number[];
}

const target = () => `${sentinel.url}/fuzz`;
const route = fc.constantFrom(['POST', '/webhook'] as const, ['GET', '/webhook'] as const, ['GET', '/status'] as const);

/** Bodies that are not a JSON object: the 422, before credentials matter. */
const notAnObject: fc.Arbitrary<Case> = fc
  .tuple(
    fc.oneof(
      notJsonObjectText(60),
      fc.constant(null).map(() => `${JSON.stringify({ service: target() })}`.slice(0, -1)),
      fc.constantFrom("{'service': 1}", '{"service": 1,}', '{"a": NaN}', '{service: 1}', '{"a": 1}{"b": 2}', '\uFEFF{}'),
      fc.tuple(fc.integer({ min: 10_000, max: 100_000 }), fc.boolean()).map(([depth, closed]) => '['.repeat(depth) + (closed ? ']'.repeat(depth) : '')),
      fc.integer({ min: 10_000, max: 50_000 }).map((depth) => '{"a":'.repeat(depth)),
    ),
    route,
    fc.boolean(),
  )
  .map(([body, [method, path], withAuth]) => ({ kind: 'not a JSON object', method, path, body, headers: withAuth ? auth : {}, expected: [422] }));

/** Bytes that are not UTF-8 at all: still not a JSON object. */
const invalidUtf8: fc.Arbitrary<Case> = fc
  .tuple(fc.uint8Array({ minLength: 1, maxLength: 64 }), route)
  .map(([bytes, [method, path]]) => ({ kind: 'invalid UTF-8', method, path, body: Buffer.concat([Buffer.from([0xff, 0xfe, 0xc3]), Buffer.from(bytes)]), headers: auth, expected: [422] }));

/** A submission aimed at the sentinel with one field broken. */
const brokenField: fc.Arbitrary<Case> = fc
  .tuple(
    fc.oneof(
      fc.constantFrom<[string, unknown]>(
        ['service', 42],
        ['service', null],
        ['service', ['http://127.0.0.1/']],
        ['service', ''],
        ['service', 'ftp://127.0.0.1/'],
        ['service', '/relative'],
        ['service', 'http://'],
        ['callback', 7],
        ['callback', 'javascript:alert(1)'],
        ['methodtype', ''],
        ['methodtype', 'CONNECT'],
        ['methodtype', 'TRACE'],
        ['methodtype', 7],
        ['headers', 'Authorization: x'],
        ['headers', ['a', 'b']],
        ['headers', { 'X-Count': 1 }],
        ['headers', { 'X Bad': 'v' }],
        ['headers', { '': 'v' }],
        ['headers', { 'X-Evil': 'a\r\nHost: evil.example' }],
        ['headers', { 'X-Nul': 'a\u0000b' }],
        ['max_attempts', 0],
        ['max_attempts', 21],
        ['max_attempts', '3'],
        ['max_attempts', 2.5],
        ['timeout_ms', 99],
        ['timeout_ms', 60_001],
        ['timeout_ms', '1000'],
        ['callback_max_attempts', -1],
        ['callback_max_attempts', true],
      ),
      fc
        .constantFrom('Host', 'Content-Length', 'Transfer-Encoding', 'Connection', 'Upgrade', 'TE', 'Trailer', 'Keep-Alive', 'Proxy-Authorization', 'proxy-connection', 'HOST', 'transfer-ENCODING')
        .map((name): [string, unknown] => ['headers', { [name]: 'x' }]),
      fc.integer({ min: jobLimits.maxHeaders + 1, max: 80 }).map((n): [string, unknown] => ['headers', Object.fromEntries(Array.from({ length: n }, (_, i) => [`X-H${i}`, 'v']))]),
      fc.integer({ min: jobLimits.urlChars + 1, max: 5000 }).map((n): [string, unknown] => ['service', `${target()}/${'a'.repeat(n)}`]),
      anyString(12).filter((m) => !['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'HEAD', 'OPTIONS'].includes(m.toUpperCase())).map((m): [string, unknown] => ['methodtype', m]),
      fc.integer({ min: 21, max: 2 ** 31 - 1 }).map((n): [string, unknown] => ['max_attempts', n]),
    ),
    fc.boolean(),
  )
  .map(([[field, value], credentialsInBody]) => {
    const payload: Record<string, unknown> = { service: target(), ...(credentialsInBody ? { client_id: demo.clientId, verify_token: demo.verifyToken } : {}) };
    payload[field] = value;
    return { kind: `bad ${field}`, method: 'POST', path: '/webhook', body: JSON.stringify(payload), headers: credentialsInBody ? {} : auth, expected: [400] };
  });

/** Raw-text hostility that JSON.stringify cannot produce: 1e400, duplicate keys, data nested too deep to serialise. */
const rawHostile: fc.Arbitrary<Case> = fc
  .oneof(
    fc.constantFrom('max_attempts', 'timeout_ms', 'callback_max_attempts').map((field) => `{"service":"${target()}","${field}":1e400}`),
    fc.constant(null).map(() => `{"service":"${target()}","service":12}`),
    fc.constant(null).map(() => `{"service":"${target()}","headers":{"X-Ok":"1"},"headers":{"Host":"evil.example"}}`),
    fc.integer({ min: 20_000, max: 100_000 }).map((depth) => `{"service":"${target()}","data":${'['.repeat(depth)}${']'.repeat(depth)}}`),
    fc.integer({ min: 20_000, max: 40_000 }).map((depth) => `{"service":"${target()}","data":${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}}`),
    fc.constant(null).map(() => `{"service":5,"__proto__":{"service":"${target()}"}}`),
    fc.constant(null).map(() => `{"__proto__":{"service":"${target()}","polluted":true},"constructor":{"prototype":{"service":"${target()}"}}}`),
  )
  .map((body) => ({ kind: 'hostile raw JSON', method: 'POST', path: '/webhook', body, headers: auth, expected: [400] }));

/** Over 256 KiB (and under the gateway's own 10 MB): the 413, whatever it holds. */
const oversize: fc.Arbitrary<Case> = fc
  .tuple(fc.integer({ min: 1, max: 3 * jobLimits.requestBodyBytes }), fc.constantFrom('a', '\u00e9', '\u20ac'), fc.boolean())
  .map(([extra, pad, withAuth]) => {
    const skeleton = JSON.stringify({ service: target(), data: '' });
    const fill = pad.repeat(Math.ceil((jobLimits.requestBodyBytes - Buffer.byteLength(skeleton) + extra) / Buffer.byteLength(pad)));
    return { kind: 'over 256 KiB', method: 'POST', path: '/webhook', body: JSON.stringify({ service: target(), data: fill }), headers: withAuth ? auth : {}, expected: [413] };
  });

/** Bad credentials in every place they can be given: the 401, or the 429 once they repeat. */
const badCredentials: fc.Arbitrary<Case> = fc
  .oneof(
    fc.stringMatching(/^[0-9a-f]{48}$/).filter((t) => t !== victim.verifyToken).map((token) => ({ headers: basic(victim.clientId, token), body: { service: target() } })),
    fc.stringMatching(/^[0-9]{14}$/).filter((id) => id !== demo.clientId && id !== victim.clientId).map((id) => ({ headers: basic(id, demo.verifyToken), body: { service: target() } })),
    fc.string({ unit: fc.constantFrom(...'abcXYZ019+/=:_- '), maxLength: 60 }).map((h) => ({ headers: { authorization: `Basic ${h}` }, body: { service: target() } })),
    fc.constantFrom('Bearer x', `Basic ${demo.clientId}:${demo.verifyToken}`, `Basic ${Buffer.from(demo.clientId).toString('base64')}`, '').map((authorization) => ({ headers: { authorization }, body: { service: target() } })),
    fc.oneof(fc.integer(), fc.constant(null), fc.string({ maxLength: 10 })).map((token) => ({ headers: auth, body: { service: target(), client_id: victim.clientId, verify_token: token } })),
  )
  .map(({ headers, body }) => ({ kind: 'bad credentials', method: 'POST', path: '/webhook', body: JSON.stringify(body), headers, expected: [401, 429] }));

/** Idempotency-Key values an HTTP client can send that are not 1 to 255 visible ASCII characters. */
const badIdempotencyKey: fc.Arbitrary<Case> = fc
  .oneof(fc.constant(''), fc.integer({ min: 256, max: 4000 }).map((n) => 'k'.repeat(n)), fc.constantFrom('a b', 'a\tb', 'caf\u00e9', 'a,b c'))
  .map((key) => ({ kind: 'bad Idempotency-Key', method: 'POST', path: '/webhook', body: JSON.stringify({ service: target() }), headers: { ...auth, 'idempotency-key': key }, expected: [400] }));

/** Routes that do not exist, and job ids that name nothing. */
const nowhere: fc.Arbitrary<Case> = fc.oneof(
  fc.webPath().filter((p) => !['/webhook', '/status', '/health'].includes(`/${p}`.replace(/\/+$/, '').replace(/^\/+/, '/'))).map((p) => ({ kind: 'unknown route', method: 'POST' as const, path: `/x/${p}`, body: JSON.stringify({ service: target() }), headers: auth, expected: [404] })),
  anyString(40).map((id) => ({ kind: 'unknown job id', method: 'GET' as const, path: '/status', body: JSON.stringify({ job_id: id }), headers: auth, expected: [404] })),
);

/**
 * URLs parsers read differently, built around the sentinel's own host and port: WHATWG would
 * have sent each one there (it repairs them), so a rule that let one through is a request seen.
 */
const ambiguousTarget: fc.Arbitrary<Case> = fc
  .tuple(fc.constant(null).chain(() => ambiguousUrl(new URL(sentinel.url).host)), fc.constantFrom('service', 'callback'))
  .map(([{ url, rule }, field]) => {
    const payload = field === 'service' ? { service: url, max_attempts: 1 } : { service: `${sentinel.url}/never`, callback: url, max_attempts: 1 };
    // The callback's own job is refused too, so the sentinel's /never sees nothing either.
    return { kind: `ambiguous URL (${rule})`, method: 'POST', path: '/webhook', body: JSON.stringify(payload), headers: auth, expected: [400] };
  });

/** Input that must not pass although the seed let it: each of these got a 202 before. */
const mustNotPass: fc.Arbitrary<Case> = fc.oneof(
  // A JSON object with a byte that is not UTF-8 in it: repaired to U+FFFD it parsed, and ran.
  fc.tuple(fc.constantFrom([0xff], [0xc0, 0xaf], [0xed, 0xa0, 0x80], [0x80], [0xf8, 0x88, 0x80, 0x80, 0x80]), fc.boolean()).map(([bad, inData]) => ({
    kind: 'invalid UTF-8 in a JSON object',
    method: 'POST' as const,
    path: '/webhook',
    body: inData
      ? Buffer.concat([Buffer.from(`{"service":"${target()}","data":"a`), Buffer.from(bad), Buffer.from('"}')])
      : Buffer.concat([Buffer.from(`{"service":"${target()}/`), Buffer.from(bad), Buffer.from('"}')]),
    headers: auth,
    expected: [422],
  })),
  fc.constantFrom('po\u017ft', 'PO\u017fT', 'opt\u0131ons', '\uff30\uff2f\uff33\uff34').map((methodtype) => ({ kind: 'non-ASCII methodtype', method: 'POST' as const, path: '/webhook', body: JSON.stringify({ service: target(), methodtype }), headers: auth, expected: [400] })),
  // Good Basic credentials beside body credentials that are not the same pair: the body used to win.
  fc.constant(null).map(() => ({ kind: 'body and Basic credentials that disagree', method: 'POST' as const, path: '/webhook', body: JSON.stringify({ service: target(), client_id: victim.clientId, verify_token: victim.verifyToken }), headers: auth, expected: [401, 429] })),
);

const badRequest: fc.Arbitrary<Case> = fc.oneof(notAnObject, invalidUtf8, brokenField, rawHostile, oversize, badCredentials, badIdempotencyKey, nowhere, ambiguousTarget, mustNotPass);

describe('fuzzing the local stack over HTTP with bad requests', () => {
  const kinds: Record<string, number> = {};
  const statuses: Record<string, number> = {};

  it('answers hundreds of generated bad requests with the contract\'s 4xx, never a 5xx or a 202', async () => {
    await fc.assert(
      fc.asyncProperty(badRequest, async (bad) => {
        kinds[bad.kind] = (kinds[bad.kind] ?? 0) + 1;
        const reply = await send(bad.method, bad.path, bad.body, bad.headers);
        statuses[reply.status] = (statuses[reply.status] ?? 0) + 1;
        expectContractShape(reply);
        expect(bad.expected, `${bad.kind}: ${reply.status} ${reply.text}`).toContain(reply.status);
      }),
      { numRuns: 400 },
    );
    console.log(JSON.stringify({ e2eFuzzCases: kinds, statuses, total: Object.values(kinds).reduce((a, b) => a + b, 0) }));
    expect(statuses['202']).toBeUndefined();
  });

  it('the target received nothing from any of them, although the stack could reach it', async () => {
    expect(sentinel.received).toEqual([]);
    // The control: one valid job to the same target arrives, so silence above was not a dead target.
    const control = await call(stack.url, 'POST', '/webhook', { service: `${sentinel.url}/control`, max_attempts: 1 }, auth);
    expect(control.status).toBe(202);
    await waitForJob(stack.url, String(control.body['job_id']), (job) => job['status'] === 'completed');
    await waitFor(() => (sentinel.received.length > 0 ? true : undefined), 10_000, 'the control request');
    expect(sentinel.received.map((r) => r.url)).toEqual(['/control']);
  });

  it('a "__proto__" header object is refused, not turned into a job that runs without it', async () => {
    const guard = await startTarget();
    try {
      const reply = await send('POST', '/webhook', `{"service":"${guard.url}/proto","max_attempts":1,"headers":{"__proto__":{"X-Injected":"yes"}}}`, auth);
      if (reply.status === 202) {
        // Let the job run out before the target closes, so the failure below is the only one.
        await waitForJob(stack.url, String((JSON.parse(reply.text) as Record<string, unknown>)['job_id']), (job) => job['status'] === 'completed' || job['status'] === 'failed');
      }
      expect(reply.status, reply.text).toBe(400);
      expectContractShape(reply);
      expect(guard.received).toEqual([]);
    } finally {
      await guard.close();
    }
  });
});
