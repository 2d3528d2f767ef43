/**
 * Client credentials: verify tokens are stored only as SHA-256 hashes and compared in constant
 * time; a lost token is replaced, never recovered.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { credentialCacheMs } from '../../lib/definitions.ts';
import { BadCredentials, TooManyFailures } from './errors.ts';
import type { Client, ClientStore, Clock, CountWindow, FailureCount, FailureCounter } from './ports.ts';
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

/**
 * What every client id this service makes looks like: 14 digits (newClientId's, and the
 * seed's demo client's). The failure limiter counts per client id only an id of this shape.
 */
export const clientIdShape = /^[0-9]{14}$/;

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
 * `Bearer client_id:verify_token`, the pair Basic carries without its base64, or
 * `Bearer client_id.verify_token`: RFC 6750's token syntax (b64token) has no colon, and a strict
 * client or proxy may insist on it. A client id is digits and a token hex, so either separator
 * is unambiguous.
 */
function fromBearer(authorization: string | undefined): Given {
  if (authorization === undefined || !/^\s*bearer(\s|$)/i.test(authorization)) return 'absent';
  const match = authorization.match(/^\s*bearer\s+([^\s:.]+)[:.](\S+)\s*$/i);
  if (!match?.[1] || !match[2]) return 'unreadable';
  return { clientId: match[1], token: match[2] };
}

/**
 * v1's credentials: HTTP Basic or Bearer in `Authorization`, never in the body (v1's body is the
 * job: a `client_id` there is an unknown field). Anything else, or nothing, gives none (a 401).
 */
export function readHeaderCredentials(authorization: string | undefined): Credentials | undefined {
  for (const read of [fromBasic, fromBearer]) {
    const given = read(authorization);
    if (given === 'unreadable') return undefined;
    if (given !== 'absent') return given;
  }
  return undefined;
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

/** How long an instance trusts the counts it read (see FailureLimiter's `counts`). */
export const countFreshMs = 1_000;

const knownKey = (source: string, id: string | undefined) => (id === undefined ? source : `${source} ${id}`);

/** What the limiter tells whoever runs it: the counter failed, and the limiter went on without it. */
export type CounterFailed = (error: unknown, doing: 'check' | 'record') => void;

export interface FailureLimiterOptions {
  clock?: Clock;
  limits?: FailureLimits;
  /** Told when the counter could not be read or written; it is never given credentials. */
  onCounterFailed?: CounterFailed;
}

/**
 * Answers repeated authentication failures with 429 instead of another try. Keyed by the
 * caller's address (and the id it tries), so a guesser slows itself down, never the client
 * it impersonates, nor anyone else. The counts live in a FailureCounter that every function
 * instance shares (the limits table), so the limits hold for the whole service, however many
 * instances serve a guesser's requests; a count of one instance's own would multiply them by
 * the instances.
 *
 * Fixed windows: a failure counts in the window it falls in, and the counts start again at 0
 * when the window turns. Cheaper than a sliding window (one item read per source a second in
 * an instance, one write per failure), at the price that a guesser who times it right gets up to twice a limit across a
 * window's turn.
 *
 * Where the counter fails, the limiter fails open. The limiter is a brake on guessing, not the
 * lock: the credential check is, and it holds alone (24 random bytes, compared as hashes in
 * constant time). Failing closed would turn an outage of the limits table into an outage of
 * the API for every client, legitimate ones first. So a count that cannot be read lets the
 * request on to its credential check, and a failure that cannot be recorded is still a 401: a
 * guesser gains only the tries the counter missed meanwhile, and the API stage's throttling
 * still bounds those. Each is reported (`onCounterFailed`), for an operator to see.
 *
 * ```ts
 * const limiter = new FailureLimiter(counter, { onCounterFailed: (error) => logger.warn(...) });
 * await limiter.check(sourceIp, clientId); // throws TooManyFailures (429) when over a limit
 * await limiter.fail(sourceIp, clientId); // after a BadCredentials
 * ```
 */
export class FailureLimiter {
  private readonly clock: Clock;
  private readonly limits: FailureLimits;
  private readonly onCounterFailed: CounterFailed | undefined;
  /** This instance's copy of the counts it read lately, by source and id. */
  private readonly known = new Map<string, { window: number; until: number; count: FailureCount }>();

  constructor(
    private readonly counter: FailureCounter,
    options: FailureLimiterOptions = {},
  ) {
    this.clock = options.clock ?? systemClock;
    this.limits = options.limits ?? defaultFailureLimits;
    this.onCounterFailed = options.onCounterFailed;
  }

  /** Throws TooManyFailures while the source (or the source against this id) is over its limit. */
  async check(source: string, clientId: string | undefined): Promise<void> {
    const now = this.clock.now();
    const window = this.window(now);
    const id = counted(clientId);
    let count: FailureCount;
    try {
      count = await this.counts(source, window, id, now);
    } catch (error) {
      this.onCounterFailed?.(error, 'check');
      return;
    }
    if (count.fromSource >= this.limits.perSource || count.againstClient >= this.limits.perClient) {
      throw new TooManyFailures(Math.max(1, Math.ceil((window.end - now) / 1000)));
    }
  }

  /** Counts a failed authentication from the source (and against the id, when it is one). */
  async fail(source: string, clientId: string | undefined): Promise<void> {
    const now = this.clock.now();
    const window = this.window(now);
    const id = counted(clientId);
    try {
      await this.counter.record(source, window, id);
    } catch (error) {
      this.onCounterFailed?.(error, 'record');
      return;
    }
    // This instance's own failure is in its copy at once; the others' arrive with the next read.
    const known = this.known.get(knownKey(source, id));
    if (known?.window === window.start) known.count = { fromSource: known.count.fromSource + 1, againstClient: known.count.againstClient + (id === undefined ? 0 : 1) };
  }

  /**
   * The counts, read at most once per `countFreshMs` per source and id in an instance: a busy
   * address's item is read by each instance once a second, not once a request, so one address
   * can send any number of requests without its item's partition limiting it (3,000 reads a
   * second, twice that eventually consistent). The price: another instance's failures of the
   * last second may go unseen, a few tries more for a guesser, still bounded by the stage's
   * throttle.
   */
  private async counts(source: string, window: CountWindow, id: string | undefined, now: number): Promise<FailureCount> {
    const key = knownKey(source, id);
    const known = this.known.get(key);
    if (known?.window === window.start && known.until > now) return known.count;
    const count = await this.counter.read(source, window, id);
    if (this.known.size > 10_000) this.known.clear();
    this.known.set(key, { window: window.start, until: now + countFreshMs, count });
    return count;
  }

  private window(now: number): CountWindow {
    const start = Math.floor(now / this.limits.windowMs) * this.limits.windowMs;
    return { start, end: start + this.limits.windowMs };
  }
}

/**
 * The client id to count a failure against, when it has the shape of one. The id comes from the
 * request, and each id counted is a counter of its own in the source's item: anything else
 * (long, odd, made up to bloat the item) names no client this service made, so a guess at it
 * can only fail, and the source's own count is enough to stop it.
 */
function counted(clientId: string | undefined): string | undefined {
  return clientId !== undefined && clientIdShape.test(clientId) ? clientId : undefined;
}

/**
 * The client the credentials name, unless the source is over its failure limit: then 429, even
 * for the right credentials (a guesser who found them learns nothing until the window turns).
 * The limiter's read runs beside the credential check, not before it, so it adds no wait of
 * its own; a failure is recorded before the 401 is answered, so the next try sees it.
 */
export async function authenticate(deps: { auth: Authenticator; limiter?: FailureLimiter | undefined }, credentials: Credentials | undefined, source: string): Promise<Client> {
  const clientId = credentials?.clientId;
  const [limit, authenticated] = await Promise.allSettled([deps.limiter?.check(source, clientId), deps.auth.authenticate(credentials)]);
  if (limit.status === 'rejected') throw limit.reason;
  if (authenticated.status === 'rejected') {
    if (authenticated.reason instanceof BadCredentials) await deps.limiter?.fail(source, clientId);
    throw authenticated.reason;
  }
  return authenticated.value;
}
