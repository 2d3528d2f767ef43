/**
 * Client credentials: verify tokens are stored only as SHA-256 hashes and compared in constant
 * time; a lost token is replaced, never recovered.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { credentialCacheMs } from '../../lib/definitions.ts';
import { BadCredentials, TooManyFailures } from './errors.ts';
import type { Client, ClientStore, Clock } from './ports.ts';
import { systemClock } from './ports.ts';

export interface Credentials {
  clientId: string;
  token: string;
}

export function hashToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

/** 24 random bytes as 48 hex characters: the seed's demo token has the same shape. */
export function newVerifyToken(): string {
  return randomBytes(24).toString('hex');
}

/** A 14-digit id, like the seed's demo client's. */
export function newClientId(): string {
  const digits = randomBytes(8).readBigUInt64BE() % 10n ** 14n;
  return digits.toString().padStart(14, '0');
}

/** A Standard Webhooks secret: "whsec_" and a base64 32-byte key. */
export function newSigningSecret(): string {
  return `whsec_${randomBytes(32).toString('base64')}`;
}

export interface NewClient {
  client: Client;
  /** Shown once, to whoever made the client: the record keeps only its hash. */
  verifyToken: string;
  signingSecret: string;
}

/** A client record as first stored, with the credentials it was made with; any field not given is new. */
export function newClient(fields: { clientId?: string; name?: string; verifyToken?: string; signingSecret?: string; created?: string } = {}): NewClient {
  const clientId = fields.clientId ?? newClientId();
  const verifyToken = fields.verifyToken ?? newVerifyToken();
  const signingSecret = fields.signingSecret ?? newSigningSecret();
  const client: Client = {
    clientId,
    name: fields.name ?? clientId,
    tokenHash: hashToken(verifyToken),
    signingSecrets: [signingSecret],
    created: fields.created ?? new Date().toISOString(),
  };
  return { client, verifyToken, signingSecret };
}

/** What one place says about the credentials: nothing, a pair, or something that cannot be one. */
type Given = Credentials | 'absent' | 'unreadable';

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** `client_id` and `verify_token` from the JSON body, as the seed reads them: both strings, or neither. */
function fromBody(body: Record<string, unknown> | undefined): Given {
  const clientId = body?.['client_id'];
  const token = body?.['verify_token'];
  if (clientId === undefined && token === undefined) return 'absent';
  return typeof clientId === 'string' && typeof token === 'string' ? { clientId, token } : 'unreadable';
}

/** HTTP Basic `client_id:verify_token` (curl -u); another scheme (Bearer) is not ours to read. */
function fromBasic(authorization: string | undefined): Given {
  if (authorization === undefined || !/^\s*basic(\s|$)/i.test(authorization)) return 'absent';
  const match = authorization.match(/^\s*basic\s+([A-Za-z0-9+/=_-]+)\s*$/i);
  if (!match?.[1]) return 'unreadable';
  let decoded: string;
  try {
    decoded = utf8.decode(Buffer.from(match[1], 'base64'));
  } catch {
    return 'unreadable';
  }
  const colon = decoded.indexOf(':');
  if (colon < 0) return 'unreadable';
  return { clientId: decoded.slice(0, colon), token: decoded.slice(colon + 1) };
}

/**
 * Credentials from the JSON body (`client_id`, `verify_token`, as the seed reads them) or from
 * HTTP Basic auth (`client_id:verify_token`, so `curl -u` works). Given in both places they must
 * be the same pair: credentials that disagree, or a place that holds something unreadable, give
 * none (a 401), never a choice of one over the other.
 */
export function readCredentials(body: Record<string, unknown> | undefined, authorization: string | undefined): Credentials | undefined {
  const inBody = fromBody(body);
  const inHeader = fromBasic(authorization);
  if (inBody === 'unreadable' || inHeader === 'unreadable') return undefined;
  if (inBody === 'absent') return inHeader === 'absent' ? undefined : inHeader;
  if (inHeader === 'absent') return inBody;
  return inBody.clientId === inHeader.clientId && inBody.token === inHeader.token ? inBody : undefined;
}

const hashOfNothing = hashToken('');

/**
 * Checks credentials against the client store, through a cache that lives at most
 * `credentialCacheMs`, so a revoked client is refused within that bound.
 */
export class Authenticator {
  private readonly cache = new Map<string, { client: Client | undefined; until: number }>();

  constructor(
    private readonly clients: ClientStore,
    private readonly clock: Clock = systemClock,
    private readonly ttlMs: number = credentialCacheMs,
  ) {}

  /** The authenticated client, or BadCredentials. */
  async authenticate(credentials: Credentials | undefined): Promise<Client> {
    if (!credentials || credentials.clientId.length === 0 || credentials.clientId.length > 128) throw new BadCredentials();
    const client = await this.client(credentials.clientId);
    // Compare even when the client is unknown, so timing does not tell which ids exist.
    const expected = Buffer.from(client?.tokenHash ?? hashOfNothing, 'hex');
    const given = Buffer.from(hashToken(credentials.token), 'hex');
    const same = expected.length === given.length && timingSafeEqual(expected, given);
    if (!client || !same || client.revoked) throw new BadCredentials();
    return client;
  }

  /** Drops a client from the cache, after this process changed it. */
  forget(clientId: string): void {
    this.cache.delete(clientId);
  }

  /** The client record, through the cache (signing a callback needs it too). */
  async client(clientId: string): Promise<Client | undefined> {
    const now = this.clock.now();
    const cached = this.cache.get(clientId);
    if (cached && cached.until > now) return cached.client;
    const client = await this.clients.get(clientId);
    if (this.cache.size > 10_000) this.cache.clear();
    // An unknown id is remembered briefly only: a client created a moment later gets in soon.
    this.cache.set(clientId, { client, until: now + (client ? this.ttlMs : Math.min(this.ttlMs, 1_000)) });
    return client;
  }
}

export interface FailureLimits {
  /** Failures allowed from one source against one client id in a window. */
  perClient: number;
  /** Failures allowed from one source, whatever ids it tries, in a window. */
  perSource: number;
  windowMs: number;
}

export const defaultFailureLimits: FailureLimits = { perClient: 10, perSource: 1_000, windowMs: 60_000 };

/**
 * Answers repeated authentication failures with 429 instead of another try. Keyed by the
 * caller's address (and the id it tries), so a guesser slows itself down, never the client
 * it impersonates, nor anyone else. It lives in one process: on AWS each function instance
 * keeps its own count, and the API stage's throttling bounds the whole.
 */
export class FailureLimiter {
  private readonly counts = new Map<string, { window: number; failures: number }>();

  constructor(
    private readonly clock: Clock = systemClock,
    private readonly limits: FailureLimits = defaultFailureLimits,
  ) {}

  /** Throws TooManyFailures while the source (or source and id) is over its limit. */
  check(source: string, clientId: string | undefined): void {
    const window = this.window();
    const over = (key: string, limit: number) => {
      const entry = this.counts.get(key);
      return entry !== undefined && entry.window === window && entry.failures >= limit;
    };
    if (over(source, this.limits.perSource) || (clientId !== undefined && over(`${source} ${clientId}`, this.limits.perClient))) {
      const next = (window + 1) * this.limits.windowMs;
      throw new TooManyFailures(Math.max(1, Math.ceil((next - this.clock.now()) / 1000)));
    }
  }

  fail(source: string, clientId: string | undefined): void {
    const window = this.window();
    if (this.counts.size > 50_000) this.counts.clear();
    for (const key of clientId === undefined ? [source] : [source, `${source} ${clientId}`]) {
      const entry = this.counts.get(key);
      this.counts.set(key, { window, failures: entry?.window === window ? entry.failures + 1 : 1 });
    }
  }

  private window(): number {
    return Math.floor(this.clock.now() / this.limits.windowMs);
  }
}
