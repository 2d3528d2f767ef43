/**
 * The EgressPolicy: which addresses a job's service call and its callback may reach.
 *
 * Everything that is not globally reachable is refused (the IANA IPv4 and IPv6 special-purpose
 * address registries, plus multicast and the unallocated IPv6 space), unless EGRESS_ALLOW_CIDRS
 * allows it. The check is meant to run on the address actually connected to: the HTTP client
 * (lambdas/adapters/http.ts) calls `resolveChecked` from inside its connector's DNS lookup, so a
 * name cannot resolve to one address for the check and another for the connection.
 *
 * ```ts
 * const policy = EgressPolicy.fromEnv(process.env.EGRESS_ALLOW_CIDRS); // "127.0.0.0/8,::1/128"
 * policy.classify('10.0.0.1');
 * // { allowed: false, reason: 'egress policy: 10.0.0.1 is a private address (10.0.0.0/8) and ...' }
 * ```
 *
 * Pure except for `resolveChecked`, whose DNS lookup is injectable.
 */
import { BlockList, isIP } from 'node:net';
import { promises as dnsPromises } from 'node:dns';
import type { LookupAddress } from 'node:dns';

/** A refusal; `reason` starts with "egress policy:" and says which range and why. */
export type Refusal = { allowed: false; reason: string };
export type Verdict = { allowed: true } | Refusal;
/** `literal`: the host is an IP address, already classified; otherwise a name, checked when resolved. */
export type UrlVerdict = { allowed: true; literal: boolean } | Refusal;

/** A DNS lookup returning every address of a name, as `dns.promises.lookup` does with `all`. */
export type Lookup = (hostname: string, options: { all: true; verbatim: true }) => Promise<LookupAddress[]>;

/** The refusal of a target by the egress policy; `reason` starts with "egress policy:". */
export class EgressRefused extends Error {
  override name = 'EgressRefused';
  constructor(readonly reason: string) {
    super(reason);
  }
}

/** An EGRESS_ALLOW_CIDRS entry that is not a CIDR (or a bare address). */
export class InvalidCidrError extends Error {
  override name = 'InvalidCidrError';
  constructor(readonly cidr: string) {
    super(`EGRESS_ALLOW_CIDRS: "${cidr}" is not a CIDR (expected e.g. 10.0.0.0/8 or fd00::/8)`);
  }
}

/** A name that could not be resolved; the message is `dns: <code> <hostname>`. */
export class DnsLookupFailed extends Error {
  override name = 'DnsLookupFailed';
  constructor(
    readonly code: string,
    readonly hostname: string,
  ) {
    super(`dns: ${code} ${hostname}`);
  }
}

type Family = 'ipv4' | 'ipv6';

interface Range {
  cidr: string;
  /** Completes "<address> is …". */
  what: string;
  family: Family;
  /** One list per range, so a refusal can name the range that matched. */
  list: BlockList;
}

function range(cidr: string, what: string): Range {
  const parsed = parseCidr(cidr);
  if (!parsed) throw new InvalidCidrError(cidr);
  const list = new BlockList();
  list.addSubnet(parsed.network, parsed.prefix, parsed.family);
  return { cidr, what, family: parsed.family, list };
}

/**
 * IANA IPv4 special-purpose registry entries that are not globally reachable, plus multicast.
 * 192.0.0.0/24 is refused whole although two of its /32s are global (PCP/TURN anycast): no
 * webhook target lives there.
 */
const v4Ranges: readonly Range[] = [
  range('0.0.0.0/8', 'a "this network" address'),
  range('10.0.0.0/8', 'a private address'),
  range('100.64.0.0/10', 'a shared (CGNAT) address'),
  range('127.0.0.0/8', 'a loopback address'),
  range('169.254.0.0/16', 'a link-local address'),
  range('172.16.0.0/12', 'a private address'),
  range('192.0.0.0/24', 'an IETF protocol assignment'),
  range('192.0.2.0/24', 'a documentation address'),
  range('192.88.99.0/24', 'a 6to4 relay anycast address'),
  range('192.168.0.0/16', 'a private address'),
  range('198.18.0.0/15', 'a benchmarking address'),
  range('198.51.100.0/24', 'a documentation address'),
  range('203.0.113.0/24', 'a documentation address'),
  range('224.0.0.0/4', 'a multicast address'),
  range('240.0.0.0/4', 'a reserved address'), // includes 255.255.255.255, limited broadcast
];

/**
 * IANA IPv6 special-purpose registry entries that are not globally reachable. Order matters:
 * the first match names the refusal (::/128 before ::/96). ::ffff:0:0/96 and 64:ff9b::/96 are
 * not here: they carry an IPv4 address, which is classified instead.
 */
const v6Ranges: readonly Range[] = [
  range('::/128', 'the unspecified address'),
  range('::1/128', 'a loopback address'),
  range('::/96', 'an IPv4-compatible address (deprecated)'),
  range('64:ff9b:1::/48', 'a local-use NAT64 address'),
  range('100::/64', 'a discard-only address'),
  range('100:0:0:1::/64', 'a dummy address'),
  range('2001::/23', 'an IETF protocol assignment'),
  range('2001:db8::/32', 'a documentation address'),
  // 6to4 is deprecated (RFC 7526) and a relay would forward to whatever IPv4 host is embedded.
  range('2002::/16', 'a 6to4 address'),
  range('3fff::/20', 'a documentation address'),
  range('5f00::/16', 'an SRv6 SID address'),
  range('fc00::/7', 'a unique local address'),
  range('fe80::/10', 'a link-local address'),
  range('fec0::/10', 'a site-local address (deprecated)'),
  range('ff00::/8', 'a multicast address'),
];

/** Only 2000::/3 is allocated for global unicast; everything else is reserved by the IETF. */
const globalUnicast = range('2000::/3', 'outside the global unicast space');

/** Parses "a.b.c.d/n", "x::y/n" or a bare address (one host). */
function parseCidr(text: string): { network: string; prefix: number; family: Family } | undefined {
  const slash = text.indexOf('/');
  const network = slash === -1 ? text : text.slice(0, slash);
  const version = isIP(network);
  if (version === 0) return undefined;
  const family: Family = version === 4 ? 'ipv4' : 'ipv6';
  const max = version === 4 ? 32 : 128;
  if (slash === -1) return { network, prefix: max, family };
  const prefixText = text.slice(slash + 1);
  if (!/^\d{1,3}$/.test(prefixText)) return undefined;
  const prefix = Number(prefixText);
  if (prefix > max) return undefined;
  return { network, prefix, family };
}

/** The 16 bytes of a valid IPv6 address (zone already removed). */
function ipv6Bytes(address: string): Uint8Array {
  const bytes = new Uint8Array(16);
  let text = address;
  // A dotted IPv4 tail (::ffff:1.2.3.4) becomes two hextets.
  const lastColon = text.lastIndexOf(':');
  const tail = text.slice(lastColon + 1);
  if (tail.includes('.')) {
    const [a = 0, b = 0, c = 0, d = 0] = tail.split('.').map(Number);
    text = `${text.slice(0, lastColon + 1)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head = '', rest] = text.split('::');
  const headParts = head === '' ? [] : head.split(':');
  const restParts = rest === undefined || rest === '' ? [] : rest.split(':');
  const missing = 8 - headParts.length - restParts.length;
  const hextets = [...headParts, ...Array<string>(rest === undefined ? 0 : missing).fill('0'), ...restParts];
  hextets.forEach((hextet, i) => {
    const value = parseInt(hextet, 16);
    bytes[i * 2] = value >> 8;
    bytes[i * 2 + 1] = value & 0xff;
  });
  return bytes;
}

function embeddedIpv4(bytes: Uint8Array): { kind: string; v4: string } | undefined {
  const v4 = () => `${bytes[12]}.${bytes[13]}.${bytes[14]}.${bytes[15]}`;
  const zeros = (from: number, to: number) => bytes.slice(from, to).every((b) => b === 0);
  if (zeros(0, 10) && bytes[10] === 0xff && bytes[11] === 0xff) return { kind: 'an IPv4-mapped form of', v4: v4() };
  if (bytes[0] === 0x00 && bytes[1] === 0x64 && bytes[2] === 0xff && bytes[3] === 0x9b && zeros(4, 12)) {
    return { kind: 'a NAT64 form of', v4: v4() };
  }
  return undefined;
}

const first = (ranges: readonly Range[], address: string, family: Family): Range | undefined =>
  ranges.find((r) => r.list.check(address, family));

const notAllowed = (detail: string): Refusal => ({
  allowed: false,
  reason: `egress policy: ${detail} and EGRESS_ALLOW_CIDRS does not allow it`,
});

export class EgressPolicy {
  /** Kept per family: a BlockList matches IPv4 addresses against IPv4-mapped IPv6 rules. */
  private readonly allowV4 = new BlockList();
  private readonly allowV6 = new BlockList();

  /** @throws InvalidCidrError naming the first entry that is not a CIDR. */
  constructor(readonly allowCidrs: readonly string[] = []) {
    for (const cidr of allowCidrs) {
      const parsed = parseCidr(cidr);
      if (!parsed) throw new InvalidCidrError(cidr);
      (parsed.family === 'ipv4' ? this.allowV4 : this.allowV6).addSubnet(parsed.network, parsed.prefix, parsed.family);
    }
  }

  /**
   * Reads EGRESS_ALLOW_CIDRS: comma-separated CIDRs, whitespace tolerated; empty or undefined
   * allows nothing beyond the public internet.
   */
  static fromEnv(value: string | undefined): EgressPolicy {
    const cidrs = (value ?? '')
      .split(',')
      .map((part) => part.trim())
      .filter((part) => part !== '');
    return new EgressPolicy(cidrs);
  }

  /** Whether a connection to this IP address (v4 or v6, a zone id tolerated) is allowed. */
  classify(address: string): Verdict {
    const bare = address.includes('%') ? address.slice(0, address.indexOf('%')) : address;
    const version = isIP(bare);
    if (version === 4) {
      const refused = first(v4Ranges, bare, 'ipv4');
      if (!refused || this.allowV4.check(bare, 'ipv4')) return { allowed: true };
      return notAllowed(`${address} is ${refused.what} (${refused.cidr})`);
    }
    if (version !== 6) return { allowed: false, reason: `egress policy: ${address} is not an IP address` };

    if (this.allowV6.check(bare, 'ipv6')) return { allowed: true };
    const embedded = embeddedIpv4(ipv6Bytes(bare));
    if (embedded) {
      const refused = first(v4Ranges, embedded.v4, 'ipv4');
      if (!refused || this.allowV4.check(embedded.v4, 'ipv4')) return { allowed: true };
      return notAllowed(`${address} is ${embedded.kind} ${embedded.v4}, ${refused.what} (${refused.cidr}),`);
    }
    const refused = first(v6Ranges, bare, 'ipv6') ?? (globalUnicast.list.check(bare, 'ipv6') ? undefined : globalUnicast);
    if (!refused) return { allowed: true };
    return notAllowed(`${address} is ${refused.what} (${refused.cidr})`);
  }

  /**
   * Checks what can be checked of a URL before any lookup: scheme, host, and the address when the
   * host is an IP literal (`literal: true`). A name (`literal: false`) is checked at resolution.
   * WHATWG URL parsing has already turned 0x7f.1, 2130706433, 017700000001 and 127.1 into 127.0.0.1.
   */
  checkUrl(url: string): UrlVerdict {
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      return { allowed: false, reason: 'egress policy: not an absolute URL' };
    }
    if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
      return { allowed: false, reason: `egress policy: scheme ${parsed.protocol} is not http: or https:` };
    }
    const hostname = parsed.hostname.startsWith('[') ? parsed.hostname.slice(1, -1) : parsed.hostname;
    if (hostname === '') return { allowed: false, reason: 'egress policy: the URL has no host' };
    if (isIP(hostname) !== 0) {
      const verdict = this.classify(hostname);
      return verdict.allowed ? { allowed: true, literal: true } : { allowed: false, reason: verdict.reason };
    }
    // RFC 6761: localhost and *.localhost are loopback whatever DNS says.
    const name = hostname.endsWith('.') ? hostname.slice(0, -1) : hostname;
    if ((name === 'localhost' || name.endsWith('.localhost')) && !this.classify('127.0.0.1').allowed) {
      return notAllowed(`${hostname} is a loopback name (127.0.0.0/8)`);
    }
    return { allowed: true, literal: false };
  }
}

/**
 * Resolves every address of `hostname` once and returns them when ALL are allowed: a name with one
 * private address among public ones is refused, because the connector could pick any of them.
 *
 * @throws EgressRefused when an address is refused; DnsLookupFailed when the name does not resolve.
 */
export async function resolveChecked(
  policy: EgressPolicy,
  hostname: string,
  lookup: Lookup = dnsPromises.lookup,
): Promise<LookupAddress[]> {
  let addresses: LookupAddress[];
  try {
    addresses = await lookup(hostname, { all: true, verbatim: true });
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    throw new DnsLookupFailed(typeof code === 'string' ? code : 'EAI_FAIL', hostname);
  }
  if (addresses.length === 0) throw new DnsLookupFailed('ENODATA', hostname);

  const refusals: string[] = [];
  for (const { address } of addresses) {
    const verdict = policy.classify(address);
    if (!verdict.allowed) refusals.push(verdict.reason.replace(/^egress policy: /, ''));
  }
  if (refusals.length === 0) return addresses;
  const which =
    addresses.length === 1
      ? 'an address that is refused'
      : `${addresses.length} addresses and ${refusals.length} of them ${refusals.length === 1 ? 'is' : 'are'} refused`;
  throw new EgressRefused(`egress policy: ${hostname} resolves to ${which}: ${refusals[0]}`);
}
