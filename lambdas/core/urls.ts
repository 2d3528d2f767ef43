/**
 * URLs every reader reads alike. A job's `service` and `callback` are read by many parsers: ours
 * (WHATWG's, Node's `URL`, for the egress check and the request), the client's and the callback
 * receiver's when they read the record (Python's urllib, Go's net/url, curl, Node's legacy
 * `url.parse`: RFC 3986 readers), and any proxy on the way. WHATWG repairs what RFC 3986 readers
 * take literally or refuse — it strips whitespace, reads `\` as `/`, adds missing slashes, maps
 * non-ASCII hosts through IDNA, decodes a percent-encoded host, reads `0x7f.1` as 127.0.0.1 — so
 * the same text can name two hosts. The egress check is only whole if the host it checks is the
 * host every reader sees: so a URL is accepted only when the text the client sent is already what
 * WHATWG makes of it, and anything a parser would have to repair is refused, never normalised.
 *
 * The rules, in the order they are judged (the first one broken is the 400's message):
 *  1. no whitespace or control characters (WHATWG strips or drops them, others keep them);
 *  2. no backslash (WHATWG reads it as "/", ending the host; others read a character);
 *  3. ASCII only: an internationalised host in its xn-- form, other characters percent-encoded;
 *  4. none of `"<>^`{|}`, which RFC 3986 allows nowhere (WHATWG encodes some, keeps others),
 *     nor `'`, which WHATWG encodes in a query only and Node's legacy `url.parse` everywhere;
 *  5. `%` only as the start of a percent-encoded byte (Go refuses `%zz`, WHATWG keeps it);
 *  6. `http://` or `https://`, then the host: exactly two slashes (WHATWG reads `http:host`,
 *     `http:/host` and `http:///host` as `http://host/`; RFC 3986 readers see no host at all);
 *  7. no credentials: no `@` in the authority at all, which also ends the userinfo/host confusion
 *     of `http://a@b@c/` (WHATWG: host c; a reader splitting at the first "@": host b@c) and
 *     `http://:pw@host/`, percent-encoded or not; the secure choice, since nothing of a
 *     credential is then stored, logged or echoed to a callback;
 *  8. a port, if written, from 1 to 65535 in decimal without leading zeros (port 0 reaches
 *     nothing, and `:080` or `:` is a spelling only some readers repair);
 *  9. the host: not percent-encoded; a DNS name of letters, digits, `-` and `_` in dot-separated
 *     labels (a trailing dot allowed), an IPv4 address in dotted decimal, or an IPv6 address in
 *     brackets; an address written exactly as WHATWG writes it (`127.0.0.1`, not `127.1`,
 *     `2130706433`, `0177.0.0.1` or `127.0.0.1.`; `[::1]`, not `[0:0::1]`), because WHATWG reads
 *     numeric forms as addresses that other readers take for names (a zone id, `[fe80::1%25eth0]`,
 *     WHATWG refuses outright: the schema's "absolute http(s) URL" rule answers it);
 * 10. no `.` or `..` path segments, plain or as `%2e` (WHATWG removes them, others keep them);
 * 11. and, for whatever the rules above do not name, the text must be WHATWG's own serialisation
 *     of it: a net under the rules, so that a repair no rule foresaw is refused too.
 *
 * Judged harmless, and accepted as written (every reader agrees on them, and the text stored is
 * the text sent, up to them): the scheme's and the host's letter case, a default port (`:80`,
 * `:443`), an empty path (sent as `/`), a trailing dot on a name, and a fragment (never sent).
 *
 * ```ts
 * unambiguousUrl('service', 'http://127.1/');
 * // 'service: host "127.1" must be written "127.0.0.1": ...'
 * ```
 */
import { isIP } from 'node:net';

/** The rules' messages, without the field: each names the rule, and why, as the 400 says it. */
export const urlRules = {
  whitespace: 'must not contain whitespace or control characters (WHATWG strips or drops them, other parsers keep them)',
  backslash: 'must not contain a backslash (WHATWG reads it as "/", other parsers as a character)',
  ascii: 'must be ASCII: write an internationalised host name in its xn-- form and percent-encode other characters as UTF-8 (parsers map them differently)',
  characters: "must not contain \" ' < > ^ ` { | or }: percent-encode them (RFC 3986 allows them nowhere, and parsers encode ' differently)",
  percent: 'must use % only to start a percent-encoded byte (%XX)',
  slashes: 'must start with http:// or https:// and then the host, with exactly two slashes (WHATWG reads http:/host and http:///host as http://host/, other parsers do not)',
  credentials: 'must not hold credentials (user:password@); send them in headers (Authorization)',
  port: 'port must be a decimal number from 1 to 65535 without leading zeros (port 0 reaches nothing)',
  hostPercent: 'host must not be percent-encoded (WHATWG decodes it, other parsers do not)',
  hostName: "host must be a DNS name (letters, digits, '-' and '_' in dot-separated labels), an IPv4 address, or an IPv6 address in brackets",
  hostAddress: (written: string, read: string) =>
    `host ${JSON.stringify(written)} must be written ${JSON.stringify(read)}: an IP address only as WHATWG writes it (IPv4 in dotted decimal without leading zeros, IPv6 in its shortest form), since parsers read other spellings differently`,
  dotSegments: 'path must not hold "." or ".." segments, plain or percent-encoded (WHATWG removes them, other parsers keep them)',
  serialised: (href: string) => `must be written as WHATWG URL parsers write it, ${JSON.stringify(href)}, so that every parser reads the same URL`,
} as const;

// Rule 1: C0 controls, space, DEL. Rule 3: anything above U+007E. Rule 4: the rest of what RFC 3986
// excludes, and ' (a sub-delimiter WHATWG keeps in a path and encodes in a query).
const whitespaceOrControl = /[\x00-\x20\x7f]/;
const nonAscii = /[^\x00-\x7e]/;
const notInRfc3986 = /["'<>^`{|}]/;
const badPercent = /%(?![0-9A-Fa-f]{2})/;
const schemeAndTwoSlashes = /^(https?):\/\/(?![/])/i;
const dnsName = /^[0-9A-Za-z_-]+(?:\.[0-9A-Za-z_-]+)*\.?$/;
const bracketedIpv6 = /^\[[0-9A-Fa-f:.]+\]$/;
const port = /^[1-9][0-9]{0,4}$/;
const defaultPorts: Record<string, string> = { http: '80', https: '443' };

/**
 * The first rule `raw` breaks, as a 400 message naming `field` ("service: must not hold
 * credentials ..."); undefined when it breaks none, or when WHATWG cannot parse it at all (the
 * schema's own "must be an absolute http(s) URL" rule answers that).
 *
 * Judges the raw text the client sent, before `new URL()` normalises it: once a URL passes, the
 * raw text is what is stored, shown and sent, and WHATWG reads it as written.
 */
export function unambiguousUrl(field: string, raw: string): string | undefined {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return undefined;
  }
  const broken = firstBrokenRule(raw, url);
  return broken === undefined ? undefined : `${field}: ${broken}`;
}

function firstBrokenRule(raw: string, url: URL): string | undefined {
  if (whitespaceOrControl.test(raw)) return urlRules.whitespace;
  if (raw.includes('\\')) return urlRules.backslash;
  if (nonAscii.test(raw)) return urlRules.ascii;
  if (notInRfc3986.test(raw)) return urlRules.characters;
  if (badPercent.test(raw)) return urlRules.percent;

  const scheme = schemeAndTwoSlashes.exec(raw)?.[1]?.toLowerCase();
  if (scheme === undefined) return urlRules.slashes;
  // From here on WHATWG and RFC 3986 readers split the text alike: the authority ends at the
  // first "/", "?" or "#" (a backslash, which WHATWG would also end it at, is refused above).
  const afterScheme = raw.slice(scheme.length + '://'.length);
  const authorityEnd = afterScheme.search(/[/?#]/);
  const authority = authorityEnd === -1 ? afterScheme : afterScheme.slice(0, authorityEnd);
  const rest = authorityEnd === -1 ? '' : afterScheme.slice(authorityEnd);
  if (authority.includes('@')) return urlRules.credentials;

  const bracketEnd = authority.startsWith('[') ? authority.indexOf(']') + 1 : 0;
  const colon = authority.indexOf(':', bracketEnd);
  const host = colon === -1 ? authority : authority.slice(0, colon);
  const portText = colon === -1 ? undefined : authority.slice(colon + 1);
  if (portText !== undefined && (!port.test(portText) || Number(portText) > 65_535)) return urlRules.port;

  if (host.includes('%')) return urlRules.hostPercent;
  if (!dnsName.test(host) && !bracketedIpv6.test(host)) return urlRules.hostName;
  const read = url.hostname;
  if (host.toLowerCase() !== read) {
    const address = read.startsWith('[') || isIP(read) !== 0;
    return address ? urlRules.hostAddress(host, read) : urlRules.hostName;
  }

  const path = rest.split(/[?#]/, 1)[0] ?? '';
  if (path.split('/').some((segment) => ['.', '..'].includes(segment.replace(/%2e/gi, '.')))) return urlRules.dotSegments;

  // What is left: the text, up to the harmless differences, must be WHATWG's serialisation.
  const shownPort = portText === undefined || portText === defaultPorts[scheme] ? '' : `:${portText}`;
  const written = `${scheme}://${host.toLowerCase()}${shownPort}${rest.startsWith('/') ? rest : `/${rest}`}`;
  if (written !== url.href) return urlRules.serialised(url.href);
  return undefined;
}
