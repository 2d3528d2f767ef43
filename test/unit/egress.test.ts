import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import type { LookupAddress } from 'node:dns';
import {
  DnsLookupFailed,
  EgressPolicy,
  EgressRefused,
  InvalidCidrError,
  resolveChecked,
} from '../../lambdas/core/egress.ts';
import type { Lookup } from '../../lambdas/core/egress.ts';

/*
 * The oracle: the refused ranges written out again, with their own arithmetic, so a range
 * missing from (or mistyped in) the policy's table shows up as a counterexample.
 */
const refusedV4 = [
  '0.0.0.0/8', '10.0.0.0/8', '100.64.0.0/10', '127.0.0.0/8', '169.254.0.0/16', '172.16.0.0/12',
  '192.0.0.0/24', '192.0.2.0/24', '192.88.99.0/24', '192.168.0.0/16', '198.18.0.0/15',
  '198.51.100.0/24', '203.0.113.0/24', '224.0.0.0/4', '240.0.0.0/4',
];
/** Refused whatever they carry (the v4-carrying ::ffff:0:0/96 and 64:ff9b::/96 are tested apart). */
const refusedV6 = [
  '::/128', '::1/128', '::/96', '64:ff9b:1::/48', '100::/64', '2001::/23', '2001:db8::/32',
  '2002::/16', '3fff::/20', '5f00::/16', 'fc00::/7', 'fe80::/10', 'fec0::/10', 'ff00::/8',
];

const runs = { numRuns: 300 };
const open = EgressPolicy.fromEnv(undefined);

function v4ToInt(address: string): number {
  return address.split('.').reduce((acc, part) => acc * 256 + Number(part), 0);
}
function intToV4(n: number): string {
  return [24, 16, 8, 0].map((shift) => Math.floor(n / 2 ** shift) % 256).join('.');
}
function v6ToBigInt(address: string): bigint {
  const [head = '', tail] = address.split('::');
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const all = tail === undefined ? h : [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t];
  return all.reduce((acc, part) => (acc << 16n) | BigInt(parseInt(part, 16)), 0n);
}
/** Formats 128 bits as IPv6, either in full or with the longest zero run compressed. */
function bigIntToV6(n: bigint, compress: boolean): string {
  const hextets = Array.from({ length: 8 }, (_, i) => ((n >> BigInt(16 * (7 - i))) & 0xffffn).toString(16));
  if (!compress) return hextets.join(':');
  let best = { start: -1, length: 0 };
  for (let i = 0; i < 8; ) {
    let j = i;
    while (j < 8 && hextets[j] === '0') j++;
    if (j - i > best.length && j - i > 1) best = { start: i, length: j - i };
    i = j === i ? i + 1 : j;
  }
  if (best.start === -1) return hextets.join(':');
  return `${hextets.slice(0, best.start).join(':')}::${hextets.slice(best.start + best.length).join(':')}`;
}

function cidrParts(cidr: string): { network: string; prefix: number } {
  const [network = '', prefix = ''] = cidr.split('/');
  return { network, prefix: Number(prefix) };
}
const inV4 = (address: string, cidr: string): boolean => {
  const { network, prefix } = cidrParts(cidr);
  const size = 2 ** (32 - prefix);
  return Math.floor(v4ToInt(address) / size) === Math.floor(v4ToInt(network) / size);
};
const isRefusedV4 = (address: string): boolean => refusedV4.some((cidr) => inV4(address, cidr));

const anyV4 = fc.integer({ min: 0, max: 2 ** 32 - 1 }).map(intToV4);
const v4In = (cidr: string) => {
  const { network, prefix } = cidrParts(cidr);
  const base = v4ToInt(network);
  return fc.integer({ min: 0, max: 2 ** (32 - prefix) - 1 }).map((offset) => intToV4(base + offset));
};
const v6In = (cidr: string) => {
  const { network, prefix } = cidrParts(cidr);
  const base = v6ToBigInt(network);
  return fc
    .tuple(fc.bigInt({ min: 0n, max: (1n << BigInt(128 - prefix)) - 1n }), fc.boolean())
    .map(([offset, compress]) => bigIntToV6(base + offset, compress));
};
/** Addresses both inside refused ranges and anywhere, so both verdicts are exercised. */
const mixedV4 = fc.oneof(anyV4, fc.constantFrom(...refusedV4).chain(v4In));
const hexMapped = (v4: string): string => {
  const n = v4ToInt(v4);
  return `${Math.floor(n / 65536).toString(16)}:${(n % 65536).toString(16)}`;
};

describe('EgressPolicy.classify', () => {
  it.each(refusedV4)('refuses every IPv4 address in %s, naming the range', (cidr) => {
    fc.assert(
      fc.property(v4In(cidr), (address) => {
        const verdict = open.classify(address);
        expect(verdict.allowed).toBe(false);
        if (!verdict.allowed) {
          expect(verdict.reason).toMatch(/^egress policy: /);
          expect(verdict.reason).toContain(address);
          expect(verdict.reason).toContain('EGRESS_ALLOW_CIDRS does not allow it');
        }
      }),
      { numRuns: 100 },
    );
  });

  it.each(refusedV6)('refuses every IPv6 address in %s, however it is spelled', (cidr) => {
    fc.assert(
      fc.property(v6In(cidr), (address) => {
        const verdict = open.classify(address);
        expect(verdict.allowed).toBe(false);
        if (!verdict.allowed) expect(verdict.reason).toMatch(/^egress policy: /);
      }),
      { numRuns: 100 },
    );
  });

  it('names the private range in its reason', () => {
    expect(open.classify('10.0.0.1')).toEqual({
      allowed: false,
      reason: 'egress policy: 10.0.0.1 is a private address (10.0.0.0/8) and EGRESS_ALLOW_CIDRS does not allow it',
    });
  });

  it('allows every public IPv4 address', () => {
    fc.assert(
      fc.property(
        anyV4.filter((a) => !isRefusedV4(a)),
        (address) => {
          expect(open.classify(address)).toEqual({ allowed: true });
        },
      ),
      { numRuns: 500 },
    );
  });

  it('allows global unicast IPv6 outside the special ranges', () => {
    const special = ['2001::/23', '2001:db8::/32', '2002::/16', '3fff::/20'].map((cidr) => {
      const { network, prefix } = cidrParts(cidr);
      return { shift: BigInt(128 - prefix), base: v6ToBigInt(network) >> BigInt(128 - prefix) };
    });
    fc.assert(
      fc.property(
        v6In('2000::/3').filter((a) => special.every((s) => v6ToBigInt(a) >> s.shift !== s.base)),
        (address) => {
          expect(open.classify(address)).toEqual({ allowed: true });
        },
      ),
      runs,
    );
  });

  it('refuses IPv6 outside 2000::/3, which is not allocated for global unicast', () => {
    expect(open.classify('4000::1').allowed).toBe(false);
    expect(open.classify('e000::1').allowed).toBe(false);
  });

  it('judges an IPv4-mapped or NAT64 address as the IPv4 address it carries, in every spelling', () => {
    const loopbackAllowed = EgressPolicy.fromEnv('127.0.0.0/8');
    fc.assert(
      fc.property(mixedV4, (v4) => {
        for (const policy of [open, loopbackAllowed]) {
          const expected = policy.classify(v4).allowed;
          expect(policy.classify(`::ffff:${v4}`).allowed).toBe(expected);
          expect(policy.classify(`::ffff:${hexMapped(v4)}`).allowed).toBe(expected);
          expect(policy.classify(`0:0:0:0:0:ffff:${hexMapped(v4)}`).allowed).toBe(expected);
          expect(policy.classify(`64:ff9b::${hexMapped(v4)}`).allowed).toBe(expected);
        }
      }),
      runs,
    );
  });

  it('names the IPv4 address a mapped address carries', () => {
    const verdict = open.classify('::ffff:7f00:1');
    expect(verdict.allowed).toBe(false);
    if (!verdict.allowed) expect(verdict.reason).toContain('127.0.0.1, a loopback address (127.0.0.0/8)');
  });

  it('allows a refused address that EGRESS_ALLOW_CIDRS covers, and only that', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...refusedV4).chain((cidr) => fc.tuple(fc.constant(cidr), v4In(cidr))),
        ([cidr, address]) => {
          expect(EgressPolicy.fromEnv(cidr).classify(address)).toEqual({ allowed: true });
          expect(EgressPolicy.fromEnv(`${address}/32`).classify(address)).toEqual({ allowed: true });
          expect(EgressPolicy.fromEnv(`${address}/32`).classify(`::ffff:${address}`)).toEqual({ allowed: true });
          // Another range in the allow list does not open this one.
          const other = refusedV4.find((c) => !inV4(address, c) && !inV4(cidrParts(c).network, cidr)) ?? '0.0.0.0/8';
          expect(EgressPolicy.fromEnv(other).classify(address).allowed).toBe(false);
        },
      ),
      runs,
    );
    fc.assert(
      fc.property(
        fc.constantFrom(...refusedV6).chain((cidr) => fc.tuple(fc.constant(cidr), v6In(cidr))),
        ([cidr, address]) => {
          expect(EgressPolicy.fromEnv(cidr).classify(address)).toEqual({ allowed: true });
        },
      ),
      runs,
    );
  });

  it('does not let an IPv6 allow rule open IPv4 addresses', () => {
    // node's BlockList would match 10.0.0.1 against ::ffff:0:0/96; the policy keeps families apart.
    expect(EgressPolicy.fromEnv('::ffff:0:0/95').classify('10.0.0.1').allowed).toBe(false);
    expect(EgressPolicy.fromEnv('::/0').classify('127.0.0.1').allowed).toBe(false);
  });

  it('refuses what is not an IP address', () => {
    expect(open.classify('example.com').allowed).toBe(false);
    expect(open.classify('').allowed).toBe(false);
  });
});

describe('EgressPolicy.fromEnv', () => {
  it('reads a comma-separated list, tolerating whitespace and empty entries', () => {
    const policy = EgressPolicy.fromEnv(' 127.0.0.0/8 ,, ::1/128 ,');
    expect(policy.allowCidrs).toEqual(['127.0.0.0/8', '::1/128']);
    expect(policy.classify('127.0.0.1').allowed).toBe(true);
    expect(policy.classify('::1').allowed).toBe(true);
    expect(policy.classify('10.0.0.1').allowed).toBe(false);
  });

  it('allows nothing extra when empty or unset', () => {
    for (const value of [undefined, '', '  ']) {
      expect(EgressPolicy.fromEnv(value).classify('127.0.0.1').allowed).toBe(false);
    }
  });

  it.each(['banana', '10.0.0.0/33', '::1/129', '10.0.0.0/', '10.0.0/8', '10.0.0.0/-1', '10.0.0.0/8/8'])(
    'refuses %s with an InvalidCidrError naming it',
    (cidr) => {
      expect(() => EgressPolicy.fromEnv(`127.0.0.0/8,${cidr}`)).toThrow(InvalidCidrError);
      expect(() => EgressPolicy.fromEnv(`127.0.0.0/8,${cidr}`)).toThrow(cidr);
    },
  );
});

describe('EgressPolicy.checkUrl', () => {
  const loopbackAllowed = EgressPolicy.fromEnv('127.0.0.0/8,::1/128');

  it.each([
    'http://127.0.0.1/',
    'http://0x7f.1/',
    'http://2130706433/',
    'http://017700000001/',
    'http://127.1/',
    'http://0x7f000001/',
    'http://0177.0.0.1/',
    'http://127.000.000.001/',
    'http://127.0.0.1./',
    'http://%31%32%37.0.0.1/',
    'http://①②⑦.0.0.1/',
    'http://example.com@127.0.0.1/',
    'http://127.0.0.1\\@example.com/',
    'https://127.0.0.1:8443/path?q=1',
    'http://[::1]/',
    'http://[0:0:0:0:0:0:0:1]/',
    'http://[::ffff:127.0.0.1]/',
    'http://[::ffff:7f00:1]/',
  ])('refuses the loopback spelling %s, and allows it when loopback is allowed', (url) => {
    const verdict = open.checkUrl(url);
    expect(verdict.allowed).toBe(false);
    if (!verdict.allowed) expect(verdict.reason).toMatch(/^egress policy: /);
    expect(loopbackAllowed.checkUrl(url)).toEqual({ allowed: true, literal: true });
  });

  it.each([
    'http://0/',
    'http://0.0.0.0/',
    'http://10.1.2.3/',
    'http://169.254.169.254/latest/meta-data/',
    'http://[fe80::1]/',
    'http://[::]/',
    'http://[fc00::1]/',
    'http://[fd00:ec2::254]/',
    'http://[::ffff:10.0.0.1]/',
    'http://[64:ff9b::a9fe:a9fe]/',
    'http://[::127.0.0.1]/',
    'http://255.255.255.255/',
    'http://224.0.0.1/',
  ])('refuses the non-public literal %s even when loopback is allowed', (url) => {
    expect(open.checkUrl(url).allowed).toBe(false);
    expect(loopbackAllowed.checkUrl(url).allowed).toBe(false);
  });

  it.each(['http://localhost/', 'http://LOCALHOST:8080/', 'http://localhost./', 'http://api.localhost/'])(
    'refuses %s outright unless loopback is allowed',
    (url) => {
      expect(open.checkUrl(url).allowed).toBe(false);
      expect(loopbackAllowed.checkUrl(url)).toEqual({ allowed: true, literal: false });
    },
  );

  it('leaves a name to be checked when it is resolved', () => {
    expect(open.checkUrl('https://example.com/hook')).toEqual({ allowed: true, literal: false });
    expect(open.checkUrl('http://127.0.0.1:80@example.com/')).toEqual({ allowed: true, literal: false });
  });

  it('allows a public literal', () => {
    expect(open.checkUrl('http://8.8.8.8/')).toEqual({ allowed: true, literal: true });
    expect(open.checkUrl('http://[2606:4700:4700::1111]/')).toEqual({ allowed: true, literal: true });
  });

  it.each(['ftp://example.com/', 'file:///etc/passwd', 'gopher://127.0.0.1:6379/', 'not a url', ''])(
    'refuses %s, which is not an http(s) URL',
    (url) => {
      const verdict = open.checkUrl(url);
      expect(verdict.allowed).toBe(false);
      if (!verdict.allowed) expect(verdict.reason).toMatch(/^egress policy: /);
    },
  );
});

describe('resolveChecked', () => {
  const answering =
    (...addresses: string[]): Lookup =>
    async () =>
      addresses.map((address): LookupAddress => ({ address, family: address.includes(':') ? 6 : 4 }));

  it('returns every address when all are public, from one lookup of all of them', async () => {
    const calls: unknown[] = [];
    const lookup: Lookup = async (hostname, options) => {
      calls.push([hostname, options]);
      return [
        { address: '93.184.215.14', family: 4 },
        { address: '2606:2800:21f:cb07:6820:80da:af6b:8b2c', family: 6 },
      ];
    };
    await expect(resolveChecked(open, 'example.com', lookup)).resolves.toEqual([
      { address: '93.184.215.14', family: 4 },
      { address: '2606:2800:21f:cb07:6820:80da:af6b:8b2c', family: 6 },
    ]);
    expect(calls).toEqual([['example.com', { all: true, verbatim: true }]]);
  });

  it('refuses a name with one private address among public ones, and says so', async () => {
    const promise = resolveChecked(open, 'sneaky.example', answering('93.184.215.14', '10.0.0.7', '1.1.1.1'));
    await expect(promise).rejects.toThrow(EgressRefused);
    await expect(promise).rejects.toThrow(
      'egress policy: sneaky.example resolves to 3 addresses and 1 of them is refused: 10.0.0.7 is a private address',
    );
  });

  it('refuses a name that resolves to loopback', async () => {
    const promise = resolveChecked(open, 'internal.example', answering('127.0.0.1'));
    await expect(promise).rejects.toThrow(/^egress policy: internal\.example resolves to an address that is refused: 127\.0\.0\.1/);
  });

  it('refuses a name that resolves to an IPv4-mapped private address', async () => {
    await expect(resolveChecked(open, 'mapped.example', answering('::ffff:192.168.1.1'))).rejects.toThrow(EgressRefused);
  });

  it('allows a private address that EGRESS_ALLOW_CIDRS covers', async () => {
    await expect(resolveChecked(EgressPolicy.fromEnv('127.0.0.0/8'), 'localhost', answering('127.0.0.1'))).resolves.toEqual([
      { address: '127.0.0.1', family: 4 },
    ]);
  });

  it('turns a lookup failure into a dns: error naming the code', async () => {
    const failing: Lookup = async () => {
      throw Object.assign(new Error('getaddrinfo ENOTFOUND nosuch.invalid'), { code: 'ENOTFOUND' });
    };
    const promise = resolveChecked(open, 'nosuch.invalid', failing);
    await expect(promise).rejects.toThrow(DnsLookupFailed);
    await expect(promise).rejects.toThrow(/^dns: ENOTFOUND nosuch\.invalid$/);
  });

  it('treats an empty answer as a dns: error', async () => {
    await expect(resolveChecked(open, 'empty.example', answering())).rejects.toThrow(/^dns: ENODATA/);
  });

  it('uses the system resolver by default', async () => {
    await expect(resolveChecked(open, 'localhost')).rejects.toThrow(/^egress policy: localhost resolves to/);
  });
});
