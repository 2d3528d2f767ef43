/**
 * AWS Signature Version 4 for header-signed requests, on node:crypto alone: what the SDK's
 * @smithy/signature-v4 does for DynamoDB and SQS, without the SDK's import cost.
 *
 * ```ts
 * const headers = sign(
 *   { method: 'POST', host: 'dynamodb.eu-west-1.amazonaws.com', path: '/', headers: { 'content-type': 'application/x-amz-json-1.0' }, body },
 *   { credentials, region: 'eu-west-1', service: 'dynamodb', date: new Date() },
 * );
 * ```
 *
 * The canonical request follows the SDK (and so the spec as AWS checks it): header names
 * lowercased and sorted, values with runs of spaces and tabs collapsed and the ends trimmed,
 * the path normalised and URI-encoded twice (every service but S3 wants that), the payload's
 * hex SHA-256. Headers that proxies and HTTP stacks rewrite (user-agent, connection, ...) are
 * sent but not signed, as the SDK does. No x-amz-content-sha256 header: DynamoDB and SQS do
 * not ask for it.
 */
import { createHash, createHmac } from 'node:crypto';

export interface Credentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
}

export interface SignInput {
  method: string;
  /** The Host header's value (with the port when it is not the scheme's default). */
  host: string;
  /** The path as sent, without a query string (JSON-protocol calls have none). */
  path: string;
  headers: Record<string, string>;
  body: string | Uint8Array;
}

export interface SignOptions {
  credentials: Credentials;
  region: string;
  /** The signing name: 'dynamodb', 'sqs'. */
  service: string;
  date: Date;
}

/** A request that cannot be signed as given (the same header twice, in two spellings). */
export class SigningError extends Error {
  override readonly name = 'SigningError';
}

const algorithm = 'AWS4-HMAC-SHA256';
const terminator = 'aws4_request';

/** Headers the signer makes itself: any given ones are dropped, as the SDK drops them. */
const generatedHeaders = new Set(['authorization', 'x-amz-date', 'date']);

/** Sent, never signed: a hop on the way may rewrite them (the SDK's ALWAYS_UNSIGNABLE_HEADERS). */
const unsignableHeaders = new Set([
  'authorization',
  'cache-control',
  'connection',
  'expect',
  'from',
  'keep-alive',
  'max-forwards',
  'pragma',
  'referer',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'user-agent',
  'x-amzn-trace-id',
]);
const unsignablePattern = /^(proxy-|sec-)/;

/**
 * Returns the headers to send: the given ones (less any authorization, x-amz-date or date),
 * `host` when not given, `x-amz-date`, `x-amz-security-token` with a session token, and
 * `authorization`.
 */
export function sign(request: SignInput, options: SignOptions): Record<string, string> {
  const { credentials, region, service, date } = options;
  const longDate = amzDate(date);
  const shortDate = longDate.slice(0, 8);
  const token = credentials.sessionToken;

  const headers: Record<string, string> = {};
  const names = new Set<string>();
  for (const [name, value] of Object.entries(request.headers)) {
    const lower = name.toLowerCase();
    if (generatedHeaders.has(lower) || (token && lower === 'x-amz-security-token')) continue;
    if (names.has(lower)) throw new SigningError(`the header ${lower} is given twice`);
    names.add(lower);
    headers[name] = value;
  }
  if (!names.has('host')) headers['host'] = request.host;
  headers['x-amz-date'] = longDate;
  if (token) headers['x-amz-security-token'] = token;

  const canonical: Array<[string, string]> = [];
  for (const [name, value] of Object.entries(headers)) {
    const lower = name.toLowerCase();
    if (unsignableHeaders.has(lower) || unsignablePattern.test(lower)) continue;
    canonical.push([lower, canonicalValue(value)]);
  }
  canonical.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const signedHeaders = canonical.map(([name]) => name).join(';');

  const canonicalRequest = [
    request.method,
    canonicalPath(request.path),
    '', // no query string
    ...canonical.map(([name, value]) => `${name}:${value}`),
    '',
    signedHeaders,
    sha256Hex(request.body),
  ].join('\n');
  const scope = `${shortDate}/${region}/${service}/${terminator}`;
  const stringToSign = `${algorithm}\n${longDate}\n${scope}\n${sha256Hex(canonicalRequest)}`;
  const signature = createHmac('sha256', signingKey(credentials.secretAccessKey, shortDate, region, service)).update(stringToSign).digest('hex');

  headers['authorization'] = `${algorithm} Credential=${credentials.accessKeyId}/${scope}, SignedHeaders=${signedHeaders}, Signature=${signature}`;
  return headers;
}

/** `20150830T123600Z`: ISO 8601 basic format, whole seconds, UTC. */
export function amzDate(date: Date): string {
  return date.toISOString().replace(/\.\d{3}Z$/, 'Z').replace(/[-:]/g, '');
}

function canonicalValue(value: string): string {
  return value.replace(/[\r\n]/g, ' ').replace(/[ \t]+/g, ' ').replace(/^ | $/g, '');
}

/** Dot segments and empty segments removed, then every segment URI-encoded (again). */
function canonicalPath(path: string): string {
  const segments: string[] = [];
  for (const segment of path.split('/')) {
    if (segment === '' || segment === '.') continue;
    if (segment === '..') segments.pop();
    else segments.push(segment);
  }
  const normalized = `${path.startsWith('/') ? '/' : ''}${segments.join('/')}${segments.length > 0 && path.endsWith('/') ? '/' : ''}`;
  return encodeRfc3986(normalized).replace(/%2F/g, '/');
}

function encodeRfc3986(text: string): string {
  return encodeURIComponent(text).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

function sha256Hex(data: string | Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

/**
 * The signing key of a day, region and service, derived from the secret by four HMACs
 * (the spec's kSigning), not cached.
 */
export function deriveSigningKey(secretAccessKey: string, shortDate: string, region: string, service: string): Buffer {
  let key: Buffer = createHmac('sha256', `AWS4${secretAccessKey}`).update(shortDate).digest();
  for (const part of [region, service, terminator]) key = createHmac('sha256', key).update(part).digest();
  return key;
}

/**
 * How many signing keys are kept. A Lambda signs for one or two services in one region with one
 * set of credentials: a handful per day, and a rotation of the credentials adds a few more.
 */
export const signingKeyCacheLimit = 32;
const signingKeys = new Map<string, Buffer>();

/**
 * `deriveSigningKey`, remembered per (secret, yyyymmdd, region, service): four HMACs saved on
 * every call. The oldest key goes when the cache is full.
 */
export function signingKey(secretAccessKey: string, shortDate: string, region: string, service: string): Buffer {
  const cacheKey = `${shortDate}\n${region}\n${service}\n${secretAccessKey}`;
  const cached = signingKeys.get(cacheKey);
  if (cached) return cached;
  const key = deriveSigningKey(secretAccessKey, shortDate, region, service);
  if (signingKeys.size >= signingKeyCacheLimit) {
    const oldest = signingKeys.keys().next().value;
    if (oldest !== undefined) signingKeys.delete(oldest);
  }
  signingKeys.set(cacheKey, key);
  return key;
}

/** How many signing keys are cached now (tests check the bound). */
export function cachedSigningKeys(): number {
  return signingKeys.size;
}
