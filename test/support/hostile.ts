/** Hostile inputs shared by the fuzz tests (core-level and end to end). */
import fc from 'fast-check';
import type { urlRules } from '../../lambdas/core/urls.ts';

/** Strings heavy in what breaks parsers and headers: controls, lone surrogates, quotes, brackets. */
export const anyString = (maxLength = 40) =>
  fc.oneof(
    fc.string({ unit: 'binary', maxLength }),
    fc.string({
      unit: fc.constantFrom('\r', '\n', '\0', '\t', '\u2028', '\uFFFD', '\uD800', '\uDFFF', '\u{1F600}', '"', '\\', ' ', 'a', '{', '[', '\u0085', '\u00A0'),
      maxLength,
    }),
  );

/** Non-blank text that is not a JSON object: invalid JSON, or JSON of another kind. */
export const notJsonObjectText = (maxLength = 60) =>
  fc.oneof(
    anyString(maxLength).filter((s) => {
      if (s.trim() === '') return false;
      try {
        const v: unknown = JSON.parse(s);
        return typeof v !== 'object' || v === null || Array.isArray(v);
      } catch {
        return true;
      }
    }),
    fc.jsonValue().filter((v) => typeof v !== 'object' || v === null || Array.isArray(v)).map((v) => JSON.stringify(v)),
  );

/**
 * A URL that breaks exactly one of the URL rules (lambdas/core/urls.ts), with the rule it breaks.
 * Built around `authority` (a host and port WHATWG writes as given, e.g. "127.0.0.1:8080"), so a
 * rule that let one through would aim the job at it: the e2e fuzz points it at a sentinel.
 */
export interface AmbiguousUrl {
  url: string;
  rule: keyof typeof urlRules;
}

const pathPart = fc.stringMatching(/^[a-z0-9_~-]{1,8}$/);

/** Spellings of a dotted-decimal IPv4 address that WHATWG reads as that address, none of them as written. */
export function ipv4Spellings(address: string): string[] {
  const parts = address.split('.').map(Number);
  const [a = 0, b = 0, c = 0, d = 0] = parts;
  const n = ((a * 256 + b) * 256 + c) * 256 + d;
  const hex = (x: number) => `0x${x.toString(16)}`;
  const oct = (x: number) => `0${x.toString(8)}`;
  return [
    String(n),
    hex(n),
    `0${n.toString(8)}`,
    parts.map(hex).join('.'),
    parts.map(oct).join('.'),
    // A leading zero makes a part octal to WHATWG: the same value only below 8.
    parts.map((x) => (x < 8 ? `0${x}` : String(x))).join('.'),
    `${a}.${b}.${c * 256 + d}`,
    `${a}.${(b * 256 + c) * 256 + d}`,
    `${address}.`,
    `${hex(a)}.${b}.${c}.${oct(d)}`,
  ].filter((spelling, i, all) => spelling !== address && all.indexOf(spelling) === i);
}

/**
 * Whether WHATWG parses `text`: `new URL`, not `URL.canParse`, whose optimised fast path in Node 20
 * misreads Latin-1 strings (it refuses "http://bücher.example/" once warm).
 */
export function parsesAsUrl(text: string): boolean {
  try {
    new URL(text);
    return true;
  } catch {
    return false;
  }
}

const insertAt = (text: string, at: number, piece: string) => `${text.slice(0, at)}${piece}${text.slice(at)}`;

/** URLs WHATWG parses (it repairs them) that break one rule each; WHATWG's parser filters, not our rules. */
export const ambiguousUrl = (authority: string): fc.Arbitrary<AmbiguousUrl> => {
  const [hostText = authority, portText] = authority.startsWith('[') ? [authority.slice(0, authority.indexOf(']') + 1), authority.slice(authority.indexOf(']') + 2) || undefined] : authority.split(':');
  const port = portText === undefined ? '' : `:${portText}`;
  const scheme = fc.constantFrom('http', 'https', 'HTTP', 'Https');
  const path = fc.array(pathPart, { maxLength: 3 }).map((parts) => `/${parts.join('/')}`);
  const good = fc.tuple(scheme, path).map(([s, p]) => `${s}://${authority}${p}`);
  const rule = (name: AmbiguousUrl['rule']) => (url: string): AmbiguousUrl => ({ url, rule: name });
  const isIpv4 = /^\d+\.\d+\.\d+\.\d+$/.test(hostText);
  const cases: Array<fc.Arbitrary<AmbiguousUrl>> = [
    // WHATWG strips C0 and space at either end, and drops tabs and newlines anywhere.
    fc.tuple(good, fc.constantFrom('\t', '\n', '\r', ' ', '\0', '\x1b', '\x7f'), fc.boolean()).map(([url, c, end]) => (end ? `${url}${c}` : `${c}${url}`)).map(rule('whitespace')),
    fc.tuple(good, fc.constantFrom('\t', '\n', '\r'), fc.nat()).map(([url, c, at]) => insertAt(url, at % (url.length + 1), c)).map(rule('whitespace')),
    fc.tuple(good, fc.constantFrom(' ', '\x7f', '\x01'), pathPart).map(([url, c, p]) => `${url}/${p}${c}${p}`).map(rule('whitespace')),
    // WHATWG reads a backslash as "/": "evil\@host" is host evil to WHATWG, host `host` to others.
    fc.tuple(scheme, path).map(([s, p]) => `${s}:\\\\${authority}${p}`).map(rule('backslash')),
    fc.tuple(scheme, path).map(([s, p]) => `${s}://${authority}\\${p.slice(1)}`).map(rule('backslash')),
    fc.tuple(scheme, pathPart).map(([s, p]) => `${s}://${p}.invalid\\@${authority}/`).map(rule('backslash')),
    fc.tuple(good, fc.constantFrom('\u00e9', '\u2460', '\u24db', '\u00ad', '\uff0e', '\u3002', '\u00a0', '\u2028', '\u{1F600}')).map(([url, c]) => `${url}/${c}`).map(rule('ascii')),
    fc.tuple(scheme, fc.constantFrom('\u2460\u2461\u2466.0.0.1', '\u24db\u24de\u24d2\u24d0\u24db\u24d7\u24de\u24e2\u24e3', 'b\u00fccher.example', `x\u3002${hostText}`, `\uff11\uff12\uff17.0.0.1`)).map(([s, h]) => `${s}://${h}${port}/`).map(rule('ascii')),
    fc.tuple(good, fc.constantFrom('"', '<', '>', '^', '`', '{', '|', '}', "'"), fc.constantFrom('/', '?', '#')).map(([url, c, where]) => `${url}${where}a${c}b`).map(rule('characters')),
    fc.tuple(good, fc.constantFrom('%', '%z', '%zz', '%2', '%g0', '%%41')).map(([url, bad]) => `${url}/a${bad}`).map(rule('percent')),
    fc.tuple(scheme, fc.constantFrom('', '/', '///', '////'), path).map(([s, slashes, p]) => `${s}:${slashes}${authority}${p}`).map(rule('slashes')),
    fc.tuple(scheme, fc.constantFrom('user:pass', 'user', ':pw', 'user:', '', '%75ser:%70ass', 'a@b', `x.invalid:${portText ?? '80'}`, 'us%3Aer'), path).map(([s, info, p]) => `${s}://${info}@${authority}${p}`).map(rule('credentials')),
    fc.tuple(scheme, fc.constantFrom('0', '00', '000', '', portText === undefined ? '080' : `0${portText}`, portText === undefined ? '00443' : `00${portText}`), path).map(([s, p, rest]) => `${s}://${hostText}:${p}${rest}`).map(rule('port')),
    fc.tuple(scheme, fc.constantFrom('a!b', 'a(b)', 'a*b', 'a+b', 'a,b', 'a;b', 'a=b', 'a~b', 'a$b', 'a&b', 'a..b', '.ab', '..', 'a.b..'), path).map(([s, h, p]) => `${s}://${h}.example${port}${p}`).map(rule('hostName')),
    fc.tuple(good, fc.constantFrom('.', '..', '%2e', '%2E', '.%2e', '%2e%2E')).map(([url, dots]) => `${url}/${dots}/x`).map(rule('dotSegments')),
    fc.tuple(good, fc.constantFrom('.', '..')).map(([url, dots]) => `${url}/${dots}`).map(rule('dotSegments')),
  ];
  if (!hostText.startsWith('[')) {
    // WHATWG percent-decodes a host before it reads it; RFC 3986 readers look it up as written.
    cases.push(
      fc.tuple(scheme, fc.nat({ max: hostText.length - 1 }), path).map(([s, at, p]) => {
        const encoded = [...hostText].map((c, i) => (i === at ? `%${c.charCodeAt(0).toString(16).padStart(2, '0')}` : c)).join('');
        return { url: `${s}://${encoded}${port}${p}`, rule: 'hostPercent' as const };
      }),
    );
  }
  if (isIpv4) {
    cases.push(fc.tuple(scheme, fc.constantFrom(...ipv4Spellings(hostText)), path).map(([s, h, p]) => `${s}://${h}${port}${p}`).map(rule('hostAddress')));
    cases.push(fc.tuple(scheme, fc.constantFrom(`[::ffff:${hostText}]`, `[0:0:0:0:0:ffff:${hostText}]`, `[::${hostText}]`), path).map(([s, h, p]) => `${s}://${h}${port}${p}`).map(rule('hostAddress')));
  }
  return fc.oneof(...cases).filter(({ url }) => parsesAsUrl(url));
};
