/**
 * SSRF, end to end: a local stack that allows no private address (EGRESS_ALLOW_CIDRS=''), a
 * sentinel HTTP server on every local address this machine has, and jobs aimed at them through
 * every spelling the URL parser accepts, as the service and as the callback. Each must be refused
 * (at submit when the target is known then, else at delivery), and no sentinel may see a single
 * connection: a connection, not a request, because an SSRF that opens a socket has already
 * happened.
 */
import { promises as dns } from 'node:dns';
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { BlockList, connect, type AddressInfo } from 'node:net';
import { hostname, networkInterfaces } from 'node:os';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { urlRules } from '../../lambdas/core/urls.ts';
import { basic, call, demo, removeDir, startStack, waitFor, waitForJob, type RunningStack } from './harness.ts';

interface Sentinel {
  /** The address bound, with a zone for an IPv6 link-local one. */
  address: string;
  /** The address as a URL host: brackets for IPv6, no zone (WHATWG URLs have none). */
  urlHost: string;
  port: number;
  /** False when the shared port was taken on this address and it listens on a port of its own. */
  sharedPort: boolean;
  connections: number;
  server: Server;
}

/**
 * How each vector may be answered:
 * - literal: the host is an IP address once parsed, so only a 400 at submit will do: by the
 *   egress policy, or, for a spelling parsers read differently, by a URL rule (core/urls.ts);
 * - name: a name that resolves (or is loopback by RFC 6761): a 400 at submit (the egress policy
 *   or a URL rule), or a 202 whose job (or callback) fails with "egress policy:" at delivery;
 * - unresolvable: not a refusal; the job fails on DNS, and nothing is connected to;
 * - unparseable: a form the WHATWG parser rejects (an IPv6 zone id); a 400 naming the field;
 * - ambiguous: a form WHATWG repairs into a local address but other parsers read otherwise
 *   (missing slashes, whitespace, credentials, port 0): only a URL rule's 400 will do.
 */
type Kind = 'literal' | 'name' | 'unresolvable' | 'unparseable' | 'ambiguous';

interface Vector {
  url: string;
  kind: Kind;
  /** What the vector aims at, for the report. */
  target: string;
}

interface Verdict {
  vector: string;
  field: 'service' | 'callback';
  target: string;
  verdict: string;
  detail: string;
  acceptable: boolean;
}

/** A name no DNS resolves (RFC 6761 reserves .invalid), used where a public name would be. */
const unresolvable = 'waas-ssrf-probe.invalid';

let stack: RunningStack;
const sentinels: Sentinel[] = [];
/** Addresses that could not be bound, with why: the report says which local addresses were not covered. */
const unbound: Array<{ address: string; error: string }> = [];
const verdicts: Verdict[] = [];
/** Jobs that got a 202, awaited to their final state before the sentinels are counted. */
const accepted: Array<{ jobId: string; field: 'service' | 'callback'; vector: Vector }> = [];

function listen(address: string, port: number): Promise<Server> {
  return new Promise((resolve, reject) => {
    const server = createServer((_, response) => response.end('sentinel'));
    server.once('error', reject);
    server.listen({ host: address, port, exclusive: true }, () => {
      server.off('error', reject);
      resolve(server);
    });
  });
}

/**
 * Private, loopback, link-local and other special-purpose ranges, written out here rather than
 * taken from the policy under test. A machine whose interface holds a public address can be
 * reached through it by design (the policy refuses what is not global), so that one is skipped.
 */
const special = new BlockList();
for (const [network, prefix] of [['0.0.0.0', 8], ['10.0.0.0', 8], ['100.64.0.0', 10], ['127.0.0.0', 8], ['169.254.0.0', 16], ['172.16.0.0', 12], ['192.0.0.0', 24], ['192.0.2.0', 24], ['192.168.0.0', 16], ['198.18.0.0', 15], ['198.51.100.0', 24], ['203.0.113.0', 24]] as const) {
  special.addSubnet(network, prefix, 'ipv4');
}
for (const [network, prefix] of [['::1', 128], ['fc00::', 7], ['fe80::', 10]] as const) special.addSubnet(network, prefix, 'ipv6');

/** Every address this machine can listen on: 127.0.0.1, another 127/8 one, ::1 and each interface's. */
function localAddresses(): string[] {
  const found = ['127.0.0.1', '127.0.0.2', '::1'];
  for (const [name, infos] of Object.entries(networkInterfaces())) {
    for (const info of infos ?? []) {
      if (!special.check(info.address, info.family === 'IPv6' ? 'ipv6' : 'ipv4')) {
        unbound.push({ address: info.address, error: 'a public address: reachable by design, not a vector' });
        continue;
      }
      const linkLocal = info.family === 'IPv6' && info.address.toLowerCase().startsWith('fe80:');
      found.push(linkLocal ? `${info.address}%${name}` : info.address);
    }
  }
  return [...new Set(found)];
}

async function startSentinels(): Promise<void> {
  let shared: number | undefined;
  for (const address of localAddresses()) {
    let server: Server | undefined;
    let sharedPort = true;
    try {
      server = await listen(address, shared ?? 0);
    } catch (error) {
      if (shared === undefined) {
        unbound.push({ address, error: String(error) });
        continue;
      }
      try {
        server = await listen(address, 0);
        sharedPort = false;
      } catch (again) {
        unbound.push({ address, error: String(again) });
        continue;
      }
    }
    const port = (server.address() as AddressInfo).port;
    shared ??= port;
    const bare = address.includes('%') ? address.slice(0, address.indexOf('%')) : address;
    const sentinel: Sentinel = { address, urlHost: bare.includes(':') ? `[${bare}]` : bare, port, sharedPort, connections: 0, server };
    server.on('connection', () => sentinel.connections++);
    sentinels.push(sentinel);
  }
}

const sentinelAt = (address: string) => sentinels.find((s) => s.address === address);

/** Resolves `name` as the stack would; undefined when it does not resolve. */
async function resolves(name: string): Promise<string[] | undefined> {
  try {
    return (await dns.lookup(name, { all: true })).map((a) => a.address);
  } catch {
    return undefined;
  }
}

/** The names /etc/hosts lists (none where there is no such file). */
function hostsFileNames(): string[] {
  let text = '';
  try {
    text = readFileSync('/etc/hosts', 'utf8');
  } catch {
    return [];
  }
  return text
    .split('\n')
    .map((line) => line.replace(/#.*/, '').trim().split(/\s+/).slice(1))
    .flat()
    .filter((name) => /^[A-Za-z0-9.-]+$/.test(name));
}

async function vectors(): Promise<Vector[]> {
  const list: Vector[] = [];
  const loop4 = sentinelAt('127.0.0.1');
  if (loop4) {
    const p = loop4.port;
    const target = `127.0.0.1:${p}`;
    for (const url of [
      `http://127.0.0.1:${p}/`,
      `https://127.0.0.1:${p}/`,
      `HTTP://127.0.0.1:${p}/`,
      `http://127.1:${p}/`,
      `http://127.0.1:${p}/`,
      `http://0x7f000001:${p}/`,
      `http://2130706433:${p}/`,
      `http://017700000001:${p}/`,
      `http://0x7f.0.0.1:${p}/`,
      `http://0x7f.1:${p}/`,
      `http://0177.0.0.1:${p}/`,
      `http://127.0.0.1.:${p}/`,
      `http://127%2E0%2E0%2E1:${p}/`,
      `http://%31%32%37.0.0.1:${p}/`,
      `http://\u2460\u2461\u2466.0.0.1:${p}/`, // ①②⑦.0.0.1: IDNA maps it to 127.0.0.1
      `http://[::ffff:127.0.0.1]:${p}/`,
      `http://[::ffff:7f00:1]:${p}/`,
      `http://[::127.0.0.1]:${p}/`,
      `http://[64:ff9b::7f00:1]:${p}/`,
      `http://[2002:7f00:1::1]:${p}/`,
      `http://user:pass@127.0.0.1:${p}/`,
      `http://${unresolvable}@127.0.0.1:${p}/`,
      `http://127.0.0.1:${p}#@${unresolvable}/`,
      `http://127.0.0.1:${p}\\@${unresolvable}/`,
      // 0.0.0.0 and [::] connect to the machine itself on Linux.
      `http://0.0.0.0:${p}/`,
      `http://0:${p}/`,
      `http://[::ffff:0.0.0.0]:${p}/`,
    ]) {
      list.push({ url, kind: 'literal', target });
    }
    for (const url of [`http://localhost:${p}/`, `http://LOCALHOST.:${p}/`, `http://foo.localhost:${p}/`, `http://localhost%2e:${p}/`, `http://\u24db\u24de\u24d2\u24d0\u24db\u24d7\u24de\u24e2\u24e3:${p}/`]) {
      list.push({ url, kind: 'name', target });
    }
    // Forms WHATWG repairs into this sentinel's address while other parsers read something else.
    for (const url of [
      `http:///127.0.0.1:${p}/`,
      `http:/127.0.0.1:${p}/`,
      `http:127.0.0.1:${p}/`,
      `http:\\127.0.0.1:${p}/`,
      ` http://127.0.0.1:${p}/`,
      `http://127.0.0.1:${p}/\u0000`,
      `http://127.0.\t0.1:${p}/`,
      `ht\ntp://127.0.0.1:${p}/`,
      `http://:pw@127.0.0.1:${p}/`,
      `http://@127.0.0.1:${p}/`,
      `http://a@b@127.0.0.1:${p}/`,
      `http://%75ser:%70ass@127.0.0.1:${p}/`,
      `http://127.0.0.1:0${p}/`,
      `http://127\uff0e0\uff0e0\uff0e1:${p}/`,
      `http://127.0.0.1:${p}/a/../`,
    ]) {
      list.push({ url, kind: 'ambiguous', target });
    }
    list.push({ url: 'http://127.0.0.1:0/', kind: 'ambiguous', target: '127.0.0.1:0' });
    list.push({ url: 'http://[::1]:00/', kind: 'ambiguous', target: '[::1]:0' });
    // Names this machine resolves to itself (its hostname, /etc/hosts): refused by what they resolve to.
    for (const name of new Set([hostname(), ...hostsFileNames(), 'ip6-localhost', 'ip6-loopback', 'localhost.localdomain'])) {
      const addresses = await resolves(name);
      if (!addresses) list.push({ url: `http://${name}:${p}/`, kind: 'unresolvable', target: `${name} (does not resolve here)` });
      // Only a name that resolves to this machine is a vector here; one that resolves elsewhere is not ours to probe.
      else if (addresses.every((a) => a.startsWith('127.') || a === '::1' || sentinels.some((s) => s.address.split('%')[0] === a))) {
        list.push({ url: `http://${name}:${p}/`, kind: 'name', target: `${name} → ${addresses.join(', ')}` });
      }
    }
  }
  const other4 = sentinelAt('127.0.0.2');
  if (other4) {
    const p = other4.port;
    list.push({ url: `http://127.0.0.2:${p}/`, kind: 'literal', target: `127.0.0.2:${p}` });
    list.push({ url: `http://[::ffff:127.0.0.2]:${p}/`, kind: 'literal', target: `127.0.0.2:${p}` });
  }
  const loop6 = sentinelAt('::1');
  if (loop6) {
    const p = loop6.port;
    for (const url of [`http://[::1]:${p}/`, `http://[0:0:0:0:0:0:0:1]:${p}/`, `http://[::0:0:1]:${p}/`, `http://[::]:${p}/`, `http://[0::]:${p}/`]) {
      list.push({ url, kind: 'literal', target: `[::1]:${p}` });
    }
  }
  // Each interface address, and its other spellings.
  for (const sentinel of sentinels.filter((s) => !['127.0.0.1', '127.0.0.2', '::1'].includes(s.address))) {
    const target = `${sentinel.address}:${sentinel.port}`;
    list.push({ url: `http://${sentinel.urlHost}:${sentinel.port}/`, kind: 'literal', target });
    if (!sentinel.urlHost.startsWith('[')) {
      const n = sentinel.urlHost.split('.').reduce((acc, part) => acc * 256 + Number(part), 0);
      list.push({ url: `http://${n}:${sentinel.port}/`, kind: 'literal', target });
      list.push({ url: `http://0x${n.toString(16)}:${sentinel.port}/`, kind: 'literal', target });
      list.push({ url: `http://[::ffff:${sentinel.urlHost}]:${sentinel.port}/`, kind: 'literal', target });
    }
    if (sentinel.address.includes('%')) {
      list.push({ url: `http://[${sentinel.address.replace('%', '%25')}]:${sentinel.port}/`, kind: 'unparseable', target });
    }
  }
  // Ranges with no local sentinel: the verdict is what matters (nothing could listen there anyway).
  for (const url of [
    'http://169.254.169.254/latest/meta-data/',
    'http://[::ffff:169.254.169.254]/latest/meta-data/',
    'http://[64:ff9b::a9fe:a9fe]/latest/meta-data/',
    'http://[fd00:ec2::254]/latest/meta-data/',
    'http://10.0.0.1/',
    'http://172.16.0.1/',
    'http://192.168.0.1/',
    'http://100.64.0.1/',
    'http://198.18.0.1/',
    'http://224.0.0.1/',
    'http://255.255.255.255/',
    'http://[fc00::1]/',
    'http://[fe80::1]/',
    'http://[ff02::1]/',
  ]) {
    list.push({ url, kind: 'literal', target: 'no local listener' });
  }
  list.push({ url: `http://${unresolvable}/`, kind: 'unresolvable', target: 'a name that does not resolve' });
  list.push({ url: `http://${unresolvable}#@127.0.0.1:${loop4?.port ?? 80}/`, kind: 'unresolvable', target: 'a name that does not resolve' });
  return list;
}

/** How each URL rule's message starts (core/urls.ts): a rule with values in it, up to the first. */
const urlRulePrefixes = Object.values(urlRules).map((rule) => (typeof rule === 'string' ? rule : rule('', '').split('""')[0] ?? ''));

async function submit(vector: Vector, field: 'service' | 'callback'): Promise<void> {
  const payload =
    field === 'service'
      ? { service: vector.url, max_attempts: 1, timeout_ms: 2_000 }
      : { service: `http://${unresolvable}/`, callback: vector.url, max_attempts: 1, timeout_ms: 2_000, callback_max_attempts: 1 };
  const answer = await call(stack.url, 'POST', '/webhook', payload, basic(demo.clientId, demo.verifyToken));
  const message = typeof answer.body['message'] === 'string' ? answer.body['message'] : '';
  const record = (verdict: string, acceptable: boolean, detail = message): void => {
    verdicts.push({ vector: vector.url, field, target: vector.target, verdict, detail, acceptable });
  };
  if (answer.status === 400 && answer.body['status'] === 'failed' && message.startsWith(`${field}: egress policy:`)) {
    return record('refused at submit (400)', vector.kind === 'literal' || vector.kind === 'name');
  }
  if (answer.status === 400 && answer.body['status'] === 'failed' && urlRulePrefixes.some((rule) => message.startsWith(`${field}: ${rule}`))) {
    return record('refused at submit by a URL rule (400)', vector.kind === 'literal' || vector.kind === 'name' || vector.kind === 'ambiguous');
  }
  if (answer.status === 400 && answer.body['status'] === 'failed' && message.startsWith(`${field} must be an absolute http(s) URL`)) {
    return record('refused at submit as not a URL (400)', vector.kind === 'unparseable');
  }
  if (answer.status === 202) {
    accepted.push({ jobId: String(answer.body['job_id']), field, vector });
    return record('accepted (202), judged at delivery', vector.kind === 'name' || vector.kind === 'unresolvable', '');
  }
  record(`unexpected ${answer.status}`, false, JSON.stringify(answer.body));
}

beforeAll(async () => {
  await startSentinels();
  stack = await startStack({ env: { EGRESS_ALLOW_CIDRS: '' } });
});

afterAll(async () => {
  await stack?.stop();
  await Promise.all(
    sentinels.map(
      (s) =>
        new Promise<void>((resolve) => {
          s.server.closeAllConnections();
          s.server.close(() => resolve());
        }),
    ),
  );
  if (stack) removeDir(stack.dataDir);
});

describe('SSRF: no job reaches a local or private address', () => {
  it('listens on every local address it can bind, on one port where possible', () => {
    expect(sentinelAt('127.0.0.1')).toBeDefined();
    expect(sentinels.length).toBeGreaterThanOrEqual(2);
    console.log(
      JSON.stringify({
        sentinels: sentinels.map((s) => ({ address: s.address, port: s.port, sharedPort: s.sharedPort })),
        unbound,
      }),
    );
  });

  it('refuses every spelling of a local address as the service and as the callback', async () => {
    const list = await vectors();
    for (const vector of list) {
      await submit(vector, 'service');
      await submit(vector, 'callback');
    }
    // A job accepted for a name must still be refused, at delivery, by the egress policy; one for
    // a name that does not resolve fails on DNS (or on its deadline while the lookup hangs).
    const unresolved = (error: string) => error.startsWith('dns:') || error === 'timeout';
    for (const { jobId, field, vector } of accepted) {
      const job = await waitForJob(stack.url, jobId, (j) => j['status'] === 'failed' && j['notified'] !== 'no');
      const error = String((job['output'] as Record<string, unknown> | null)?.['error'] ?? '');
      const entry = verdicts.find((v) => v.vector === vector.url && v.field === field);
      if (!entry) throw new Error(`no verdict recorded for ${vector.url}`);
      if (field === 'service') {
        entry.detail = error;
        if (error.startsWith('egress policy:')) entry.verdict = 'accepted (202), failed at delivery by egress policy';
        else if (unresolved(error)) entry.verdict = 'accepted (202), failed: does not resolve';
        entry.acceptable &&= vector.kind === 'name' ? error.startsWith('egress policy:') : unresolved(error);
      } else {
        const notify = String(job['notifyoutput'] ?? '');
        entry.detail = notify;
        if (notify.startsWith('egress policy:')) entry.verdict = 'accepted (202), callback refused at delivery by egress policy';
        else if (unresolved(notify)) entry.verdict = 'accepted (202), callback failed: does not resolve';
        entry.acceptable &&= job['notified'] === 'notification failed' && (vector.kind === 'name' ? notify.startsWith('egress policy:') : unresolved(notify));
      }
    }
    console.log(JSON.stringify({ ssrfVectors: verdicts }, null, 1));
    expect(list.length).toBeGreaterThan(40);
    expect(verdicts).toHaveLength(list.length * 2);
    expect(verdicts.filter((v) => !v.acceptable)).toEqual([]);
  });

  it('no sentinel received a single connection', () => {
    expect(sentinels.map((s) => ({ address: s.address, connections: s.connections }))).toEqual(
      sentinels.map((s) => ({ address: s.address, connections: 0 })),
    );
  });

  it('the sentinels were listening all along (each counts a connection made to it directly)', async () => {
    for (const sentinel of sentinels) {
      const before = sentinel.connections;
      const socket = connect({ host: sentinel.address, port: sentinel.port });
      await new Promise<void>((resolve, reject) => {
        socket.once('connect', () => resolve());
        socket.once('error', reject);
      });
      await waitFor(() => (sentinel.connections > before ? true : undefined), 5_000, `a connection to ${sentinel.address}`);
      socket.destroy();
    }
  });
});
