/**
 * The URL rules (lambdas/core/urls.ts): every form that WHATWG's parser and RFC 3986 readers read
 * differently is refused with the rule it breaks, and whatever is accepted is read alike by
 * WHATWG (Node's `URL`), an RFC 3986 reader (its Appendix B expression) and Node's legacy
 * `url.parse`: same scheme, host, port, path and query.
 */
import { parse as legacyParse } from 'node:url';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { unambiguousUrl, urlRules } from '../../lambdas/core/urls.ts';
import { ambiguousUrl, anyString, ipv4Spellings, parsesAsUrl, type AmbiguousUrl } from '../support/hostile.ts';

/** The message a rule gives, for `field`: the fixed ones as they are, the ones with a value as a pattern. */
function ruleMessage(field: string, rule: AmbiguousUrl['rule']): RegExp {
  const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const text = urlRules[rule];
  if (typeof text === 'string') return new RegExp(`^${escape(`${field}: ${text}`)}$`);
  // A message with values in it: the text around them, each value any quoted text.
  const parts = `${field}: ${(text as (...values: string[]) => string)('VALUE', 'VALUE')}`.split('"VALUE"');
  return new RegExp(`^${parts.map(escape).join('".*?"')}$`);
}

/** RFC 3986, Appendix B: the regular expression every RFC 3986 reader splits a URI by. */
function rfc3986(raw: string) {
  const match = /^(([^:/?#]+):)?(\/\/([^/?#]*))?([^?#]*)(\?([^#]*))?(#(.*))?$/.exec(raw);
  if (!match) throw new Error(`Appendix B matches every string, but not ${raw}`);
  const authority = match[4] ?? '';
  const bracket = authority.startsWith('[') ? authority.indexOf(']') + 1 : 0;
  const colon = authority.indexOf(':', bracket);
  return {
    scheme: (match[2] ?? '').toLowerCase(),
    userinfo: authority.includes('@'),
    host: (colon === -1 ? authority : authority.slice(0, colon)).toLowerCase(),
    port: colon === -1 ? '' : authority.slice(colon + 1),
    path: match[5] ?? '',
    query: match[6] === undefined ? undefined : (match[7] ?? ''),
  };
}

const defaultPort = (protocol: string) => (protocol === 'https:' ? '443' : '80');

/** Scheme, host, port and request target as each reader reads `raw`; they must all agree. */
function readings(raw: string) {
  const whatwg = new URL(raw);
  const rfc = rfc3986(raw);
  const legacy = legacyParse(raw);
  return {
    whatwg: { scheme: whatwg.protocol, host: whatwg.hostname.replace(/^\[|\]$/g, ''), port: whatwg.port || defaultPort(whatwg.protocol), target: whatwg.href.split('#')[0]?.slice(`${whatwg.protocol}//${whatwg.host}`.length), credentials: whatwg.username !== '' || whatwg.password !== '' },
    rfc3986: { scheme: `${rfc.scheme}:`, host: rfc.host.replace(/^\[|\]$/g, ''), port: rfc.port || defaultPort(`${rfc.scheme}:`), target: `${rfc.path || '/'}${rfc.query === undefined ? '' : `?${rfc.query}`}`, credentials: rfc.userinfo },
    legacy: { scheme: legacy.protocol ?? '', host: legacy.hostname ?? '', port: legacy.port ?? defaultPort(legacy.protocol ?? ''), target: legacy.path ?? '', credentials: legacy.auth !== null },
  };
}

function expectReadAlike(raw: string): void {
  const { whatwg, rfc3986: rfc, legacy } = readings(raw);
  expect({ raw, reading: rfc }).toEqual({ raw, reading: whatwg });
  expect({ raw, reading: legacy }).toEqual({ raw, reading: whatwg });
}

describe('URLs no two parsers read alike are refused, naming the field and the rule', () => {
  it.each<[string, string, AmbiguousUrl['rule']]>([
    ['no host after three slashes (WHATWG: host "host"; RFC 3986: no host)', 'http:///host/', 'slashes'],
    ['one slash', 'http:/host/', 'slashes'],
    ['no slash', 'https:host/', 'slashes'],
    ['a backslash instead of the slashes', 'http:\\\\host/', 'backslash'],
    ['a backslash before an "@" (WHATWG: host evil.invalid; others: host target)', 'http://evil.invalid\\@target.example/', 'backslash'],
    ['a backslash in the path', 'http://host/a\\b', 'backslash'],
    ['a leading space, which WHATWG strips', ' http://host/', 'whitespace'],
    ['a trailing NUL, which WHATWG strips', 'http://host/\u0000', 'whitespace'],
    ['a tab inside the host, which WHATWG drops', 'http://ho\tst/', 'whitespace'],
    ['a newline inside the scheme, which WHATWG drops', 'ht\ntp://host/', 'whitespace'],
    ['a space in the path, which WHATWG encodes', 'http://host/a b', 'whitespace'],
    ['a non-ASCII host WHATWG maps to 127.0.0.1 through IDNA', 'http://\u2460\u2461\u2466.0.0.1/', 'ascii'],
    ['a non-ASCII host WHATWG maps to localhost', 'http://\u24db\u24de\u24d2\u24d0\u24db\u24d7\u24de\u24e2\u24e3/', 'ascii'],
    ['an ideographic full stop WHATWG reads as a dot', 'http://example\u3002com/', 'ascii'],
    ['a soft hyphen WHATWG drops from the host', 'http://exa\u00admple.com/', 'ascii'],
    ['a non-ASCII path, which WHATWG encodes', 'http://host/caf\u00e9', 'ascii'],
    ['a "|" in the path', 'http://host/a|b', 'characters'],
    ['a "<" in the query', 'http://host/?a<b', 'characters'],
    ['a "`" in the fragment', 'http://host/#a`b', 'characters'],
    ['a "%" that starts no percent-encoded byte', 'http://host/100%', 'percent'],
    ['"%zz"', 'http://host/a%zzb', 'percent'],
    ['a user and password', 'http://user:pass@host/', 'credentials'],
    ['a password with an empty user', 'http://:pw@host/', 'credentials'],
    ['a user only', 'http://user@host/', 'credentials'],
    ['an empty userinfo', 'http://@host/', 'credentials'],
    ['percent-encoded credentials', 'http://%75ser:%70ass@host/', 'credentials'],
    ['two "@" (WHATWG: host c; other readers: host b)', 'http://a@b@c/', 'credentials'],
    ['port 0', 'http://host:0/', 'port'],
    ['port 00', 'http://host:00/', 'port'],
    ['a port with a leading zero', 'http://host:080/', 'port'],
    ['an empty port', 'http://host:/', 'port'],
    ['a percent-encoded host', 'http://127%2E0%2E0%2E1/', 'hostPercent'],
    ['a percent-encoded trailing dot', 'http://localhost%2e/', 'hostPercent'],
    ['a host with "!" (WHATWG accepts it)', 'http://a!b.example/', 'hostName'],
    ['an empty label', 'http://a..example/', 'hostName'],
    ['a leading dot', 'http://.example/', 'hostName'],
    ['a short IPv4 form', 'http://127.1/', 'hostAddress'],
    ['an IPv4 address as one decimal number', 'http://2130706433/', 'hostAddress'],
    ['an IPv4 address in hex', 'http://0x7f.0.0.1/', 'hostAddress'],
    ['an IPv4 address in octal', 'http://0177.0.0.1/', 'hostAddress'],
    ['an IPv4 address with a leading zero', 'http://127.0.0.01/', 'hostAddress'],
    ['an IPv4 address with a trailing dot', 'http://127.0.0.1./', 'hostAddress'],
    ['"0", which WHATWG reads as 0.0.0.0', 'http://0/', 'hostAddress'],
    ['an IPv4-mapped IPv6 address in dotted form', 'http://[::ffff:127.0.0.1]/', 'hostAddress'],
    ['an IPv6 address not in its shortest form', 'http://[0:0:0:0:0:0:0:1]/', 'hostAddress'],
    ['a "." segment', 'http://host/a/./b', 'dotSegments'],
    ['a ".." segment', 'http://host/a/../b', 'dotSegments'],
    ['a percent-encoded ".." segment', 'http://host/a/%2E%2e/b', 'dotSegments'],
    ['a trailing ".."', 'http://host/a/..', 'dotSegments'],
    ['a "\'" in the query, which WHATWG sends as %27', "http://host/?q='x'", 'characters'],
    ['a "\'" in the path, which legacy url.parse sends as %27', "http://host/it's", 'characters'],
  ])('%s: %j', (_, raw, rule) => {
    for (const field of ['service', 'callback']) expect(unambiguousUrl(field, raw)).toMatch(ruleMessage(field, rule));
  });

  it('the messages are the documented ones', () => {
    expect(unambiguousUrl('service', 'http://u:p@host/')).toBe('service: must not hold credentials (user:password@); send them in headers (Authorization)');
    expect(unambiguousUrl('callback', 'http://host:0/')).toBe('callback: port must be a decimal number from 1 to 65535 without leading zeros (port 0 reaches nothing)');
    expect(unambiguousUrl('service', 'http://0x7f.1/')).toBe(
      'service: host "0x7f.1" must be written "127.0.0.1": an IP address only as WHATWG writes it (IPv4 in dotted decimal without leading zeros, IPv6 in its shortest form), since parsers read other spellings differently',
    );
    expect(unambiguousUrl('service', 'http://h/a|b')).toBe(`service: must not contain " ' < > ^ \` { | or }: percent-encode them (RFC 3986 allows them nowhere, and parsers encode ' differently)`);
  });

  it('a URL WHATWG cannot parse is left to the schema\'s "absolute http(s) URL" rule', () => {
    for (const raw of ['http://[fe80::1%25eth0]/', 'http://host:65536/', '/relative', 'http://', 'http://[::1/']) expect(unambiguousUrl('service', raw)).toBeUndefined();
  });

  it('refuses every spelling of an IPv4 address but dotted decimal, and names the one to write', () => {
    fc.assert(
      fc.property(fc.ipV4(), (address) => {
        expect(unambiguousUrl('service', `http://${address}/`)).toBeUndefined();
        for (const spelling of ipv4Spellings(address)) {
          if (!parsesAsUrl(`http://${spelling}/`)) continue;
          expect(unambiguousUrl('service', `http://${spelling}/`)).toBe(`service: ${urlRules.hostAddress(spelling, address)}`);
        }
      }),
    );
  });

  it('every generated URL that breaks one rule is refused with that rule', () => {
    const authority = fc.oneof(
      fc.constantFrom('service.example.com', 'service.example.com:8443', '127.0.0.1:8080', '[::1]:8080', 'example.com.'),
      fc.ipV4().map((address) => `${address}:${1 + (address.length % 65535)}`),
    );
    fc.assert(
      fc.property(authority.chain((a) => ambiguousUrl(a)), ({ url, rule }) => {
        expect(unambiguousUrl('service', url)).toMatch(ruleMessage('service', rule));
      }),
      { numRuns: 2000 },
    );
  });
});

describe('what is accepted is read alike by every parser', () => {
  it.each([
    ['a plain URL', 'https://service.example.com/hook'],
    ['the scheme and host in upper case (every reader folds them)', 'HTTP://Service.Example.COM/Hook'],
    ['a default port', 'http://example.com:80/a'],
    ['an https default port', 'https://example.com:443/a'],
    ['another port', 'http://127.0.0.1:8080/post'],
    ['an empty path, sent as "/"', 'https://example.com'],
    ['a query without a path', 'https://example.com?a=1'],
    ['a name with a trailing dot', 'http://localhost./'],
    ['an underscore in a label', 'http://a_b.example/'],
    ['an xn-- name', 'http://xn--bcher-kva.example/'],
    ['IPv6 in its shortest form', 'http://[::1]:8080/'],
    ['IPv4-mapped IPv6 as WHATWG writes it', 'http://[::ffff:7f00:1]/'],
    ['percent-encoded bytes in the path and query', 'http://example.com/a%2Fb?q=%27x%27&r=%E2%82%AC'],
    ['brackets in a query (PHP arrays)', 'http://example.com/?a[]=1'],
    ['sub-delimiters in the path', 'http://example.com/a!$&()*+,;=:@b'],
    ['a fragment, even with "@" and "#" in it', 'http://127.0.0.1:8080#@evil.invalid/#x'],
    ['an empty query and fragment', 'http://example.com/?#'],
  ])('%s: %j', (_, raw) => {
    expect(unambiguousUrl('service', raw)).toBeUndefined();
    expectReadAlike(raw);
  });

  it('a URL as WHATWG writes it is accepted as written', () => {
    const written = fc
      .webUrl({ validSchemes: ['http', 'https'], withQueryParameters: true, withFragments: true })
      .map((url) => new URL(url).href)
      // WHATWG keeps these as given; the rules refuse them, since other readers do not.
      .filter((href) => !/[|^"'<>`{}\\]|%(?![0-9A-Fa-f]{2})/.test(href));
    fc.assert(
      fc.property(written, (href) => {
        expect(unambiguousUrl('service', href)).toBeUndefined();
        expectReadAlike(href);
      }),
      { numRuns: 1000 },
    );
  });

  it('whatever string is accepted, WHATWG, RFC 3986 and legacy url.parse read the same scheme, host, port and target', () => {
    const piece = fc.constantFrom(
      'http://', 'https://', 'HTTP://', 'http:', 'http:/', 'http:///', '//', '\\', '/', '@', ':', '::', '[', ']', '%', '%2e', '%40', '.', '..', '#', '?',
      '127.0.0.1', '0x7f', '1', '0', '080', '8080', 'localhost', 'example.com', 'a', '\t', ' ', '\u3002', '\u2460', '\u00ad', "'", '|', 'user:pw',
    );
    const urlish = fc.oneof(
      fc.array(piece, { minLength: 1, maxLength: 12 }).map((parts) => parts.join('')),
      fc.tuple(fc.constantFrom('http://', 'https://'), fc.array(piece, { maxLength: 10 })).map(([s, parts]) => `${s}${parts.join('')}`),
      anyString(40).map((s) => `http://${s}`),
      // Mostly well-formed: a host and port, then a path with a hostile piece here and there.
      { weight: 4, arbitrary: fc
        .tuple(
          fc.constantFrom('http://', 'https://', 'HTTP://'),
          fc.constantFrom('example.com', 'Example.COM.', '127.0.0.1', 'localhost', '[::1]', '[::ffff:7f00:1]', '127.1', '0x7f.1', 'a_b.c', 'xn--bcher-kva.example'),
          fc.constantFrom('', ':8080', ':80', ':443', ':0', ':080', ':'),
          fc.array(fc.oneof({ weight: 4, arbitrary: fc.constantFrom('/', 'a', 'b1', '~x', '-', '%41', '%2F', '?', '=', '&', '#', ':', '@', '!', '[]') }, piece), { maxLength: 8 }),
        )
        .map(([s, host, port, path]) => `${s}${host}${port}${path.join('')}`) },
    );
    let accepted = 0;
    fc.assert(
      fc.property(urlish, (raw) => {
        const broken = unambiguousUrl('service', raw);
        if (broken !== undefined || !parsesAsUrl(raw) || !/^https?:$/.test(new URL(raw).protocol)) return;
        accepted++;
        expectReadAlike(raw);
        expect(readings(raw).whatwg.credentials).toBe(false);
      }),
      { numRuns: 5000 },
    );
    expect(accepted).toBeGreaterThan(250);
  });
});
