import { createHash, createHmac, type Hash, type Hmac } from 'node:crypto';
import { SignatureV4 } from '@smithy/signature-v4';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  amzDate,
  cachedSigningKeys,
  deriveSigningKey,
  sign,
  signingKey,
  signingKeyCacheLimit,
  SigningError,
  type Credentials,
  type SignInput,
} from '../../lambdas/adapters/aws/sigv4.ts';

/** The SDK signer's hash: its Checksum interface (update/digest/reset) on node:crypto. */
class NodeSha256 {
  private hash: Hash | Hmac;
  constructor(private readonly secret?: string | ArrayBuffer | ArrayBufferView) {
    this.hash = this.fresh();
  }
  update(data: Uint8Array): void {
    this.hash.update(data);
  }
  async digest(): Promise<Uint8Array> {
    return new Uint8Array(this.hash.digest());
  }
  reset(): void {
    this.hash = this.fresh();
  }
  private fresh(): Hash | Hmac {
    if (this.secret === undefined) return createHash('sha256');
    const key = typeof this.secret === 'string' ? this.secret : ArrayBuffer.isView(this.secret) ? new Uint8Array(this.secret.buffer, this.secret.byteOffset, this.secret.byteLength) : new Uint8Array(this.secret);
    return createHmac('sha256', key);
  }
}

/** The SDK's signature of the same request, with no x-amz-content-sha256 (ours adds none either). */
async function sdkAuthorization(request: SignInput, credentials: Credentials, region: string, service: string, date: Date): Promise<Record<string, string>> {
  const signer = new SignatureV4({ credentials, region, service, sha256: NodeSha256, applyChecksum: false });
  const signed = await signer.sign(
    { method: request.method, protocol: 'https:', hostname: request.host, path: request.path, query: {}, headers: { ...request.headers }, body: request.body },
    { signingDate: date },
  );
  return signed.headers;
}

const header = (headers: Record<string, string>, name: string) => Object.entries(headers).find(([key]) => key.toLowerCase() === name)?.[1];

// Header names: tokens, in any case, some of them ones the SDK never signs.
const headerName = fc.oneof(
  fc.stringMatching(/^[A-Za-z][A-Za-z0-9-]{0,15}$/),
  fc.constantFrom('Content-Type', 'X-Amz-Target', 'User-Agent', 'Connection', 'Expect', 'proxy-authorization', 'sec-fetch-mode', 'X-Amzn-Trace-Id', 'x-amz-security-token', 'Date'),
);
// Values with runs of spaces and tabs inside and at the ends, unicode included.
const headerValue = fc
  .array(fc.oneof(fc.constantFrom(' ', '  ', '\t', ' \t '), fc.string({ unit: 'grapheme', maxLength: 8 })), { maxLength: 6 })
  .map((parts) => parts.join(''));
const headers = fc
  .uniqueArray(fc.tuple(headerName, headerValue), { selector: ([name]) => name.toLowerCase(), maxLength: 8 })
  .map((entries) => Object.fromEntries(entries.filter(([name]) => name.toLowerCase() !== 'host')));
const segment = fc.oneof(fc.constantFrom('', '.', '..', 'a b', 'ä', '%20', "it's(*)!", '~_-.'), fc.string({ unit: 'grapheme', maxLength: 6 }).filter((s) => !s.includes('/')));
const path = fc.array(segment, { maxLength: 5 }).chain((segments) => fc.boolean().map((trailing) => `/${segments.join('/')}${trailing && segments.length > 0 ? '/' : ''}`));
const body = fc.oneof(fc.constant(''), fc.string({ unit: 'grapheme', maxLength: 64 }), fc.json(), fc.uint8Array({ maxLength: 64 }));
const credentials = fc.record(
  {
    accessKeyId: fc.stringMatching(/^[A-Z0-9]{16,20}$/),
    secretAccessKey: fc.string({ minLength: 1, maxLength: 40 }),
    sessionToken: fc.stringMatching(/^[A-Za-z0-9+/=]{1,64}$/),
  },
  { requiredKeys: ['accessKeyId', 'secretAccessKey'] },
);
const date = fc.date({ min: new Date('2000-01-01T00:00:00Z'), max: new Date('2099-12-31T23:59:59Z'), noInvalidDate: true });

describe('SigV4 signing', () => {
  it('gives the same authorization header as the AWS SDK signer for any request', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom('GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'HEAD'),
        fc.constantFrom('dynamodb.eu-west-1.amazonaws.com', '127.0.0.1:4566', 'sqs.us-east-1.amazonaws.com', 'localhost:8000'),
        path,
        headers,
        body,
        credentials,
        fc.constantFrom('us-east-1', 'eu-west-1', 'ap-southeast-2'),
        fc.constantFrom('dynamodb', 'sqs'),
        date,
        async (method, host, requestPath, given, payload, creds, region, service, when) => {
          const request: SignInput = { method, host, path: requestPath, headers: { host, ...given }, body: payload };
          const ours = sign(request, { credentials: creds, region, service, date: when });
          const theirs = await sdkAuthorization(request, creds, region, service, when);
          expect(ours['authorization']).toBe(theirs['authorization']);
          expect(ours['x-amz-date']).toBe(theirs['x-amz-date']);
          expect(header(ours, 'x-amz-security-token')).toBe(header(theirs, 'x-amz-security-token'));
        },
      ),
      { numRuns: 400 },
    );
  });

  it('signs the AWS test suite request get-vanilla to its published signature', () => {
    const headers = sign(
      { method: 'GET', host: 'example.amazonaws.com', path: '/', headers: {}, body: '' },
      {
        credentials: { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY' },
        region: 'us-east-1',
        service: 'service',
        date: new Date('2015-08-30T12:36:00Z'),
      },
    );
    expect(headers).toEqual({
      host: 'example.amazonaws.com',
      'x-amz-date': '20150830T123600Z',
      authorization:
        'AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31',
    });
  });

  it('adds the session token as x-amz-security-token and signs it', () => {
    const headers = sign(
      { method: 'POST', host: 'sqs.us-east-1.amazonaws.com', path: '/', headers: { 'Content-Type': 'application/x-amz-json-1.0' }, body: '{}' },
      { credentials: { accessKeyId: 'AKID', secretAccessKey: 'secret', sessionToken: 'token' }, region: 'us-east-1', service: 'sqs', date: new Date('2024-02-29T23:59:59.999Z') },
    );
    expect(headers['x-amz-security-token']).toBe('token');
    expect(headers['x-amz-date']).toBe('20240229T235959Z');
    expect(headers['authorization']).toContain('SignedHeaders=content-type;host;x-amz-date;x-amz-security-token,');
  });

  it('refuses a header given twice in two spellings rather than sign one of them', () => {
    expect(() =>
      sign(
        { method: 'POST', host: 'h', path: '/', headers: { 'X-Amz-Target': 'a', 'x-amz-target': 'b' }, body: '' },
        { credentials: { accessKeyId: 'a', secretAccessKey: 'b' }, region: 'us-east-1', service: 'sqs', date: new Date(0) },
      ),
    ).toThrow(SigningError);
  });

  it('formats dates in ISO 8601 basic format, whole seconds', () => {
    expect(amzDate(new Date('2015-08-30T12:36:00.999Z'))).toBe('20150830T123600Z');
  });
});

describe('the signing-key cache', () => {
  it('returns what an uncached derivation gives, across day changes, regions, services and secrets', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.constantFrom('s1', 's2', 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY'), date, fc.constantFrom('us-east-1', 'eu-west-1'), fc.constantFrom('dynamodb', 'sqs')), {
          minLength: 1,
          maxLength: 80,
        }),
        (uses) => {
          for (const [secret, when, region, service] of uses) {
            const shortDate = amzDate(when).slice(0, 8);
            expect(signingKey(secret, shortDate, region, service).equals(deriveSigningKey(secret, shortDate, region, service))).toBe(true);
          }
        },
      ),
    );
  });

  it('signs requests either side of midnight UTC with that day’s key', () => {
    const credentials = { accessKeyId: 'AKID', secretAccessKey: 'secret' };
    const request: SignInput = { method: 'POST', host: 'h', path: '/', headers: {}, body: '{}' };
    const before = new Date('2030-01-01T23:59:59Z');
    const after = new Date('2030-01-02T00:00:00Z');
    // Warm the cache with the first day, then cross midnight: the second signature must use the new day's key.
    const first = sign(request, { credentials, region: 'us-east-1', service: 'sqs', date: before });
    const second = sign(request, { credentials, region: 'us-east-1', service: 'sqs', date: after });
    for (const [headers, when] of [
      [first, before],
      [second, after],
    ] as const) {
      const longDate = amzDate(when);
      const scope = `${longDate.slice(0, 8)}/us-east-1/sqs/aws4_request`;
      const canonical = ['POST', '/', '', 'host:h', `x-amz-date:${longDate}`, '', 'host;x-amz-date', createHash('sha256').update('{}').digest('hex')].join('\n');
      const toSign = ['AWS4-HMAC-SHA256', longDate, scope, createHash('sha256').update(canonical).digest('hex')].join('\n');
      const signature = createHmac('sha256', deriveSigningKey('secret', longDate.slice(0, 8), 'us-east-1', 'sqs')).update(toSign).digest('hex');
      expect(headers['authorization']).toBe(`AWS4-HMAC-SHA256 Credential=AKID/${scope}, SignedHeaders=host;x-amz-date, Signature=${signature}`);
    }
  });

  it('stays bounded however many keys are asked for', () => {
    for (let day = 1; day <= signingKeyCacheLimit * 3; day++) signingKey('secret', `2031${String(Math.ceil(day / 28)).padStart(2, '0')}${String((day % 28) + 1).padStart(2, '0')}`, 'us-east-1', 'sqs');
    expect(cachedSigningKeys()).toBeLessThanOrEqual(signingKeyCacheLimit);
  });
});
