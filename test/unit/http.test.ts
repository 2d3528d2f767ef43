import { afterEach, describe, expect, it } from 'vitest';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { setImmediate } from 'node:timers/promises';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { NodeHttpClient } from '../../lambdas/adapters/http.ts';
import { EgressPolicy } from '../../lambdas/core/egress.ts';
import type { Lookup } from '../../lambdas/core/egress.ts';
import type { OutboundRequest } from '../../lambdas/core/ports.ts';
import { startRecordingServer, type RecordingServer } from '../support/recording-server.ts';

/** A real HTTP server on a loopback port, counting what reaches it. */
type Target = RecordingServer;

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  await Promise.all(cleanups.splice(0).map((cleanup) => cleanup()));
});

async function serve(handler: (req: IncomingMessage, res: ServerResponse) => void, host = '127.0.0.1', port = 0): Promise<Target> {
  const target = await startRecordingServer((req, res) => handler(req, res), host, port);
  cleanups.push(target.close);
  return target;
}

/** Handlers answer once the request body is in, so the recorded body is complete. */
const afterBody = (handler: (req: IncomingMessage, res: ServerResponse) => void) => (req: IncomingMessage, res: ServerResponse) =>
  req.on('end', () => handler(req, res)).resume();

function client(options: { allow?: string; lookup?: Lookup; clock?: { now(): number } } = {}): NodeHttpClient {
  const http = new NodeHttpClient({
    policy: EgressPolicy.fromEnv(options.allow ?? '127.0.0.0/8,::1/128'),
    ...(options.lookup ? { lookup: options.lookup } : {}),
    ...(options.clock ? { clock: options.clock } : {}),
  });
  cleanups.push(() => http.close());
  return http;
}

const get = (url: string, more: Partial<OutboundRequest> = {}): OutboundRequest => ({
  url,
  method: 'GET',
  headers: {},
  body: null,
  timeoutMs: 5_000,
  ...more,
});

/** A lookup answering with fixed addresses, counting its calls. */
function fixedLookup(...answers: string[][]): Lookup & { calls: string[] } {
  const calls: string[] = [];
  const lookup = async (hostname: string) => {
    calls.push(hostname);
    const addresses = answers[Math.min(calls.length, answers.length) - 1] ?? [];
    return addresses.map((address) => ({ address, family: address.includes(':') ? 6 : 4 }));
  };
  return Object.assign(lookup, { calls });
}

describe('NodeHttpClient: answers', { timeout: 15_000 }, () => {
  it('captures status, headers and a JSON body, delivering method, headers and body as given', async () => {
    const target = await serve(
      afterBody((_req, res) => {
        res.writeHead(201, { 'content-type': 'application/json', 'x-trace': 'abc' });
        res.end(JSON.stringify({ ok: true, n: 1 }));
      }),
    );
    const output = await client().send({
      url: `${target.url}/hooks/in?x=1&y=two`,
      method: 'POST',
      headers: { 'Content-Type': 'application/json', 'Idempotency-Key': 'job-1', 'X-Custom': 'v a l' },
      body: '{"hello":"wörld"}',
      timeoutMs: 5_000,
    });

    expect(output).toMatchObject({
      statusCode: 201,
      body: '{"ok":true,"n":1}',
      bodyEncoding: 'utf8',
      bodyBytes: 17,
      truncated: false,
    });
    expect(output.error).toBeUndefined();
    expect(output.headers).toMatchObject({ 'content-type': 'application/json', 'x-trace': 'abc' });
    expect(target.requests).toHaveLength(1);
    const [received] = target.requests;
    expect(received?.method).toBe('POST');
    expect(received?.url).toBe('/hooks/in?x=1&y=two');
    expect(received?.body).toBe('{"hello":"wörld"}');
    expect(received?.headers).toMatchObject({
      'content-type': 'application/json',
      'idempotency-key': 'job-1',
      'x-custom': 'v a l',
      'user-agent': 'waas/0.1',
    });
  });

  it("keeps the caller's User-Agent, whatever its case", async () => {
    const target = await serve((_req, res) => res.end());
    await client().send(get(target.url, { headers: { 'USER-AGENT': 'mine/2' } }));
    expect(target.requests[0]?.headers['user-agent']).toBe('mine/2');
  });

  it('does not follow a redirect: the 3xx is the answer and its Location receives nothing', async () => {
    const elsewhere = await serve((_req, res) => res.end('should not be reached'));
    const target = await serve((_req, res) => {
      res.writeHead(302, { location: `${elsewhere.url}/landing` });
      res.end('moved');
    });
    const output = await client().send(get(`${target.url}/start`));
    expect(output.statusCode).toBe(302);
    expect(output.headers?.location).toBe(`${elsewhere.url}/landing`);
    expect(output.body).toBe('moved');
    expect(target.requests).toHaveLength(1);
    expect(elsewhere.requests).toHaveLength(0);
    expect(elsewhere.connections).toBe(0);
  });

  it('captures a 5xx answer like any other', async () => {
    const target = await serve((_req, res) => {
      res.writeHead(503, { 'retry-after': '7' });
      res.end('overloaded');
    });
    const output = await client().send(get(target.url));
    expect(output).toMatchObject({ statusCode: 503, body: 'overloaded', bodyEncoding: 'utf8' });
    expect(output.headers?.['retry-after']).toBe('7');
    expect(output.error).toBeUndefined();
  });

  it('returns a body that is not UTF-8 as base64', async () => {
    const bytes = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0xff, 0xfe, 0x80]);
    const target = await serve((_req, res) => res.end(bytes));
    const output = await client().send(get(target.url));
    expect(output.bodyEncoding).toBe('base64');
    expect(Buffer.from(output.body ?? '', 'base64')).toEqual(bytes);
    expect(output.bodyBytes).toBe(bytes.length);
  });

  it('joins a repeated response header with ", "', async () => {
    const target = await serve((_req, res) => {
      res.setHeader('set-cookie', ['a=1', 'b=2']);
      res.end();
    });
    const output = await client().send(get(target.url));
    expect(output.headers?.['set-cookie']).toBe('a=1, b=2');
  });

  it('keeps response headers up to 8 KiB, in the order received', async () => {
    const target = await serve((_req, res) => {
      for (let i = 0; i < 12; i++) res.setHeader(`x-big-${String(i).padStart(2, '0')}`, 'v'.repeat(1_000));
      res.end();
    });
    const output = await client().send(get(target.url));
    const kept = Object.entries(output.headers ?? {});
    const size = kept.reduce((sum, [name, value]) => sum + name.length + value.length + 4, 0);
    expect(size).toBeLessThanOrEqual(8 * 1024);
    const big = kept.map(([name]) => name).filter((name) => name.startsWith('x-big-'));
    expect(big.length).toBeGreaterThanOrEqual(6);
    expect(big).toEqual(Array.from({ length: big.length }, (_, i) => `x-big-${String(i).padStart(2, '0')}`));
  });

  it('gives a HEAD answer no body', async () => {
    const target = await serve((_req, res) => {
      res.writeHead(200, { 'content-length': '1234', 'content-type': 'text/plain' });
      res.end();
    });
    const output = await client().send(get(target.url, { method: 'HEAD' }));
    expect(output).toMatchObject({ statusCode: 200, bodyBytes: 0, truncated: false, body: '' });
    expect(target.requests[0]?.method).toBe('HEAD');
  });

  it('reuses one kept-alive connection for successive calls to a target', async () => {
    const target = await serve((_req, res) => res.end('ok'));
    const http = client();
    for (let i = 0; i < 3; i++) {
      expect((await http.send(get(target.url))).statusCode).toBe(200);
      // The agent takes the socket back into its pool a tick after the body ends.
      await setImmediate();
    }
    expect(target.requests).toHaveLength(3);
    expect(target.connections).toBe(1);
  });

  it('measures start and duration with the injected clock', async () => {
    const target = await serve((_req, res) => res.end());
    const readings = [1_000, 1_250];
    const output = await client({ clock: { now: () => readings.shift() ?? 9_999 } }).send(get(target.url));
    expect(output.started).toBe('1970-01-01T00:00:01.000Z');
    expect(output.durationMs).toBe(250);
  });
});

describe('NodeHttpClient: large bodies', { timeout: 15_000 }, () => {
  it('keeps the first 64 KiB of a 1 MB body and counts the rest', async () => {
    const target = await serve((_req, res) => res.end(Buffer.alloc(1024 * 1024, 'a')));
    const output = await client().send(get(target.url));
    expect(output).toMatchObject({ statusCode: 200, truncated: true, bodyBytes: 1_048_576, bodyEncoding: 'utf8' });
    expect(output.body).toHaveLength(64 * 1024);
  });

  it('does not turn a body cut inside a multi-byte character into binary', async () => {
    // 65536 = 3 × 21845 + 1: the cut leaves one byte of a three-byte "€".
    const target = await serve((_req, res) => res.end('€'.repeat(30_000)));
    const output = await client().send(get(target.url));
    expect(output).toMatchObject({ truncated: true, bodyBytes: 90_000, bodyEncoding: 'utf8' });
    expect(output.body).toBe('€'.repeat(21_845));
  });

  it('counts a streamed 100 MB body without holding it', async () => {
    const total = 100 * 1024 * 1024;
    const chunk = Buffer.alloc(64 * 1024, 'z');
    const target = await serve((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      // Written lazily, honouring backpressure, so neither side buffers the whole body.
      let sent = 0;
      const pump = (): void => {
        while (sent < total) {
          sent += chunk.length;
          if (!res.write(chunk)) {
            res.once('drain', pump);
            return;
          }
        }
        res.end();
      };
      pump();
    });
    // Garbage (socket read buffers) is collected only once ~64 MB of it has piled up, which
    // would make the peak measure V8's GC heuristics rather than what the client holds: collect
    // it at each sample, so the peak is near what is live (plus what arrived since the last one).
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as (options?: { type: 'minor' | 'major' }) => void;
    gc();
    const before = process.memoryUsage();
    let peak = { rss: before.rss, arrayBuffers: before.arrayBuffers };
    const sample = (): void => {
      gc();
      const now = process.memoryUsage();
      peak = { rss: Math.max(peak.rss, now.rss), arrayBuffers: Math.max(peak.arrayBuffers, now.arrayBuffers) };
    };
    const sampler = setInterval(sample, 50);
    try {
      const output = await client().send(get(target.url, { timeoutMs: 30_000 }));
      expect(output.error).toBeUndefined();
      expect(output).toMatchObject({ statusCode: 200, truncated: true, bodyBytes: total });
      expect(output.body).toHaveLength(64 * 1024);
    } finally {
      clearInterval(sampler);
    }
    sample();
    const mb = (bytes: number): number => bytes / 1024 / 1024;
    const rssGrowth = mb(peak.rss - before.rss);
    const bufferGrowth = mb(peak.arrayBuffers - before.arrayBuffers);
    console.info(`100 MB body: peak RSS growth ${rssGrowth.toFixed(1)} MB, live buffers ${bufferGrowth.toFixed(1)} MB`);
    expect(rssGrowth).toBeLessThan(64);
    // Holding the body shows here as 100 MB or more; streaming it peaks at 4-25 MB.
    expect(bufferGrowth).toBeLessThan(48);
  });
});

describe('NodeHttpClient: failures', { timeout: 15_000 }, () => {
  it('says "timeout" when the target never answers, within the timeout', async () => {
    const target = await serve(() => {});
    const startedAt = performance.now();
    const output = await client().send(get(target.url, { timeoutMs: 300 }));
    const elapsed = performance.now() - startedAt;
    expect(output.error).toBe('timeout');
    expect(output.statusCode).toBeUndefined();
    expect(elapsed).toBeGreaterThanOrEqual(290);
    expect(elapsed).toBeLessThan(300 + 700);
    expect(target.requests).toHaveLength(1);
  });

  it('says "timeout" when the body stalls, keeping the status it got', async () => {
    const target = await serve((_req, res) => {
      res.writeHead(200, { 'content-length': '100' });
      res.write('partial');
    });
    const startedAt = performance.now();
    const output = await client().send(get(target.url, { timeoutMs: 300 }));
    expect(output.error).toBe('timeout');
    expect(output.statusCode).toBe(200);
    expect(performance.now() - startedAt).toBeLessThan(300 + 700);
  });

  it('says "timeout" when a body trickles in past the timeout, though it never pauses for long', async () => {
    const target = await serve((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      const drip = setInterval(() => res.write('.'), 20);
      res.on('close', () => clearInterval(drip));
    });
    const startedAt = performance.now();
    const output = await client().send(get(target.url, { timeoutMs: 300 }));
    expect(output.error).toBe('timeout');
    expect(output.statusCode).toBe(200);
    expect(performance.now() - startedAt).toBeLessThan(300 + 700);
  });

  it('says "timeout" when the name lookup never answers', async () => {
    const lookup: Lookup = () => new Promise(() => {});
    const startedAt = performance.now();
    const output = await client({ lookup }).send(get('http://slow-dns.test/', { timeoutMs: 300 }));
    expect(output.error).toBe('timeout');
    expect(performance.now() - startedAt).toBeLessThan(300 + 700);
  });

  it('reports a connection reset mid-body as an error, keeping the status it got', async () => {
    const target = await serve((req, res) => {
      res.writeHead(200, { 'content-length': '100000' });
      res.write('x'.repeat(1_000), () => req.socket.destroy());
    });
    const output = await client().send(get(target.url));
    expect(output.error).toMatch(/^ECONNRESET: /);
    expect(output.statusCode).toBe(200);
  });

  it('reports a refused connection as ECONNREFUSED, without request header values', async () => {
    const closed = await serve(() => {});
    await closed.close();
    const output = await client().send(get(closed.url, { headers: { authorization: 'Bearer s3cret-value' } }));
    expect(output.error).toMatch(/^ECONNREFUSED: connect ECONNREFUSED 127\.0\.0\.1:\d+$/);
    expect(output.error).not.toContain('s3cret-value');
  });

  it('reports a name that does not resolve as a dns: error', async () => {
    const lookup: Lookup = async () => {
      throw Object.assign(new Error('getaddrinfo ENOTFOUND nosuch.invalid'), { code: 'ENOTFOUND' });
    };
    const output = await client({ lookup }).send(get('http://nosuch.invalid/hook'));
    expect(output.error).toBe('dns: ENOTFOUND nosuch.invalid');
  });

  it('never throws, even for a URL it cannot use', async () => {
    const output = await client().send(get('not a url'));
    expect(output.error).toMatch(/^egress policy: /);
  });
});

describe('NodeHttpClient: egress policy', { timeout: 15_000 }, () => {
  it('refuses an IP literal the policy does not allow, sending nothing', async () => {
    const target = await serve((_req, res) => res.end());
    const output = await client({ allow: '' }).send(get(`${target.url}/x`));
    expect(output.error).toMatch(/^egress policy: 127\.0\.0\.1 is a loopback address/);
    expect(output.statusCode).toBeUndefined();
    expect(target.connections).toBe(0);
  });

  it.each(['0x7f.1', '2130706433', '[::ffff:127.0.0.1]'])('refuses the loopback spelling %s, sending nothing', async (host) => {
    const target = await serve((_req, res) => res.end());
    const output = await client({ allow: '' }).send(get(`http://${host}:${target.port}/`));
    expect(output.error).toMatch(/^egress policy: /);
    expect(target.connections).toBe(0);
  });

  it('refuses localhost outright, before any lookup, sending nothing', async () => {
    const target = await serve((_req, res) => res.end());
    const lookup = fixedLookup(['127.0.0.1']);
    const output = await client({ allow: '', lookup }).send(get(`http://localhost:${target.port}/`));
    expect(output.error).toMatch(/^egress policy: localhost /);
    expect(lookup.calls).toHaveLength(0);
    expect(target.connections).toBe(0);
  });

  it('refuses a name that resolves to a refused address, sending nothing', async () => {
    const target = await serve((_req, res) => res.end());
    const lookup = fixedLookup(['127.0.0.1']);
    const output = await client({ allow: '', lookup }).send(get(`http://internal.test:${target.port}/`));
    expect(output.error).toMatch(/^egress policy: internal\.test resolves to an address that is refused: 127\.0\.0\.1/);
    expect(lookup.calls).toEqual(['internal.test']);
    expect(target.connections).toBe(0);
  });

  it('refuses a name with one private address among public ones', async () => {
    const target = await serve((_req, res) => res.end());
    const lookup = fixedLookup(['127.0.0.1', '93.184.215.14']);
    const output = await client({ allow: '', lookup }).send(get(`http://mixed.test:${target.port}/`, { timeoutMs: 1_000 }));
    expect(output.error).toMatch(/^egress policy: mixed\.test resolves to 2 addresses and 1 of them is refused: 127\.0\.0\.1/);
    expect(target.connections).toBe(0);
  });

  it('connects an allowed name to the address its lookup returned', async () => {
    const target = await serve((_req, res) => res.end('via lookup'));
    const lookup = fixedLookup(['127.0.0.1']);
    const output = await client({ lookup }).send(get(`http://hooks.test:${target.port}/`));
    expect(output.body).toBe('via lookup');
    expect(target.requests[0]?.headers.host).toBe(`hooks.test:${target.port}`);
  });

  it('connects to the address it checked, with no second lookup to rebind', async () => {
    const checked = await serve((_req, res) => res.end('checked'));
    // Same port on another loopback address: where a second, rebound lookup would lead.
    const rebound = await serve((_req, res) => res.end('rebound'), '127.0.0.2', checked.port);
    const lookup = fixedLookup(['127.0.0.1'], ['127.0.0.2']);
    const output = await client({ allow: '127.0.0.1/32', lookup }).send(get(`http://rebind.test:${checked.port}/`));
    expect(output.body).toBe('checked');
    expect(lookup.calls).toEqual(['rebind.test']);
    expect(rebound.connections).toBe(0);
  });

  it('tries every checked address of a name, as happy eyeballs asks for all of them', async () => {
    const target = await serve((_req, res) => res.end('second address'));
    // Nothing listens on 127.0.0.3 at this port: the connection falls over to 127.0.0.1.
    const lookup = fixedLookup(['127.0.0.3', '127.0.0.1']);
    const output = await client({ lookup }).send(get(`http://two.test:${target.port}/`));
    expect(output.body).toBe('second address');
  });
});
