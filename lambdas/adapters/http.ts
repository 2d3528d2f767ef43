/**
 * The HttpClient on undici: one attempt at a service or callback URL, with the egress policy
 * enforced on the address actually connected to.
 *
 * ```ts
 * const http = new UndiciHttpClient({ policy: EgressPolicy.fromEnv(process.env.EGRESS_ALLOW_CIDRS) });
 * const output = await http.send({ url, method: 'POST', headers, body, timeoutMs: 10_000 });
 * await http.close();
 * ```
 *
 * How the policy holds (the shape of Svix's webhook_http_client): names are resolved by the
 * connector's own `lookup`, which checks every address and hands net.connect only those, so there
 * is no second resolution to rebind. IP literals never reach a lookup, so `send` checks the URL
 * first. Either way a refused target receives no byte.
 */
import { Agent } from 'undici';
import type { LookupFunction } from 'node:net';
import type { LookupAddress } from 'node:dns';
import { jobLimits } from '../../lib/definitions.ts';
import { DnsLookupFailed, EgressRefused, resolveChecked } from '../core/egress.ts';
import type { EgressPolicy, Lookup } from '../core/egress.ts';
import type { AttemptOutput } from '../core/job.ts';
import { systemClock } from '../core/ports.ts';
import type { Clock, HttpClient, OutboundRequest } from '../core/ports.ts';

export interface UndiciHttpClientOptions {
  policy: EgressPolicy;
  /** Resolves names (default: dns.promises.lookup); every address it returns is checked. */
  lookup?: Lookup;
  /** Measures `started` and `durationMs` (default: the system clock). */
  clock?: Clock;
}

const userAgent = 'waas/0.1';
/** Idle keep-alive sockets are closed before the usual 5 s server-side idle timeout. */
const keepAliveTimeoutMs = 4_000;
const connectionsPerOrigin = 32;

type Answer = Omit<AttemptOutput, 'started' | 'durationMs'>;

export class UndiciHttpClient implements HttpClient {
  private readonly policy: EgressPolicy;
  private readonly lookup: Lookup | undefined;
  private readonly clock: Clock;
  /** One pool for the client's lifetime, so repeated calls to a target reuse connections. */
  private readonly agent: Agent;

  constructor(options: UndiciHttpClientOptions) {
    this.policy = options.policy;
    this.lookup = options.lookup;
    this.clock = options.clock ?? systemClock;
    this.agent = new Agent({
      connections: connectionsPerOrigin,
      keepAliveTimeout: keepAliveTimeoutMs,
      connect: {
        lookup: this.checkedLookup,
        // The attempt's own deadline (send) is what bounds a connect; this only reclaims sockets
        // whose attempt has already given up.
        timeout: jobLimits.timeoutMs.max,
      },
    });
  }

  /**
   * net.connect's lookup: resolves once, refuses the name unless every address is allowed, and
   * answers with exactly the addresses checked. Node 20 asks for `all` (happy eyeballs).
   */
  private readonly checkedLookup: LookupFunction = (hostname, options, callback) => {
    resolveChecked(this.policy, hostname, this.lookup).then(
      (addresses) => {
        const family = options.family === 'IPv4' ? 4 : options.family === 'IPv6' ? 6 : options.family;
        const usable: LookupAddress[] =
          family === 4 || family === 6 ? addresses.filter((a) => a.family === family) : addresses;
        const [firstAddress] = usable;
        if (!firstAddress) callback(new DnsLookupFailed('ENOTFOUND', hostname), '');
        else if (options.all) callback(null, usable);
        else callback(null, firstAddress.address, firstAddress.family);
      },
      (err: Error) => callback(err, ''),
    );
  };

  /** Makes one request and never throws: a refusal, timeout or network failure is `error`. */
  async send(request: OutboundRequest): Promise<AttemptOutput> {
    const startMs = this.clock.now();
    const started = new Date(startMs).toISOString();
    const finish = (answer: Answer): AttemptOutput => ({
      started,
      durationMs: Math.max(0, this.clock.now() - startMs),
      ...answer,
      // An error names a host or an address at most: bounded, so records stay small.
      ...(answer.error === undefined ? {} : { error: answer.error.slice(0, maxErrorChars) }),
    });

    const verdict = this.policy.checkUrl(request.url);
    if (!verdict.allowed) return finish({ error: verdict.reason });

    // What arrived before a failure mid-body: a cut answer still says who answered what.
    const seen: Pick<Answer, 'statusCode' | 'headers'> = {};
    const controller = new AbortController();
    let timer: NodeJS.Timeout | undefined;
    // The deadline covers lookup, connect, headers and body together. undici's own timeouts
    // each watch one phase, and an abort signal is not looked at while a connection is pending.
    const deadline = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => {
        resolve('timeout');
        controller.abort();
      }, request.timeoutMs);
    });
    try {
      const answer = await Promise.race([this.attempt(request, controller.signal, seen), deadline]);
      return finish(answer === 'timeout' ? { ...seen, error: 'timeout' } : answer);
    } catch (err) {
      return finish({ ...seen, error: controller.signal.aborted ? 'timeout' : describeError(err) });
    } finally {
      clearTimeout(timer);
    }
  }

  /** Destroys the pool and its sockets. */
  async close(): Promise<void> {
    await this.agent.destroy();
  }

  private async attempt(
    request: OutboundRequest,
    signal: AbortSignal,
    seen: Pick<Answer, 'statusCode' | 'headers'>,
  ): Promise<Answer> {
    const url = new URL(request.url);
    const headers = { ...request.headers };
    if (!Object.keys(headers).some((name) => name.toLowerCase() === 'user-agent')) headers['user-agent'] = userAgent;

    // undici's request() never follows redirects: a 3xx is the answer.
    const response = await this.agent.request({
      origin: url.origin,
      path: `${url.pathname}${url.search}`,
      method: request.method,
      headers,
      body: request.body ?? null,
      signal,
      headersTimeout: request.timeoutMs,
      bodyTimeout: request.timeoutMs,
    });
    seen.statusCode = response.statusCode;
    seen.headers = keptHeaders(response.headers);

    // Keep the first responseBodyBytes; count the rest without keeping it, so memory stays flat.
    const limit = jobLimits.responseBodyBytes;
    const kept = Buffer.allocUnsafe(limit);
    let keptBytes = 0;
    let bodyBytes = 0;
    for await (const chunk of response.body as AsyncIterable<Buffer>) {
      if (keptBytes < limit) keptBytes += chunk.copy(kept, keptBytes, 0, Math.min(chunk.length, limit - keptBytes));
      bodyBytes += chunk.length;
    }
    const truncated = bodyBytes > keptBytes;
    return {
      statusCode: response.statusCode,
      headers: seen.headers,
      ...encodeBody(kept.subarray(0, keptBytes), truncated),
      bodyBytes,
      truncated,
    };
  }
}

/**
 * Response headers as one string each (repeats joined with ", "), in the order received, up to
 * jobLimits.responseHeaderBytes counted as on the wire; a header that does not fit is dropped
 * and smaller ones after it are still kept.
 */
function keptHeaders(headers: Record<string, string | string[] | undefined>): Record<string, string> {
  const kept: Record<string, string> = {};
  let budget = jobLimits.responseHeaderBytes;
  for (const [name, raw] of Object.entries(headers)) {
    if (raw === undefined) continue;
    const value = Array.isArray(raw) ? raw.join(', ') : raw;
    const size = Buffer.byteLength(name) + Buffer.byteLength(value) + 4; // ": " and CRLF
    if (size > budget) continue;
    budget -= size;
    kept[name] = value;
  }
  return kept;
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/**
 * UTF-8 text when the kept bytes are UTF-8, else base64. A cut body may end inside a multi-byte
 * character; that incomplete tail (at most 3 bytes) is dropped from the text rather than making
 * the whole body binary.
 */
function encodeBody(bytes: Buffer, truncated: boolean): Pick<Answer, 'body' | 'bodyEncoding'> {
  const text = bytes.subarray(0, truncated ? completeUtf8Length(bytes) : bytes.length);
  try {
    return { body: strictUtf8.decode(text), bodyEncoding: 'utf8' };
  } catch {
    return { body: bytes.toString('base64'), bodyEncoding: 'base64' };
  }
}

/** The length of `bytes` without a trailing incomplete UTF-8 sequence. */
function completeUtf8Length(bytes: Uint8Array): number {
  const end = bytes.length;
  for (let i = end - 1; i >= Math.max(0, end - 4); i--) {
    const byte = bytes[i] ?? 0;
    if ((byte & 0xc0) === 0x80) continue; // a continuation byte: keep looking for the lead
    const expected = byte >= 0xf0 ? 4 : byte >= 0xe0 ? 3 : byte >= 0xc0 ? 2 : 1;
    return i + expected > end ? i : end;
  }
  return end;
}

/** The longest error text an output keeps. */
const maxErrorChars = 1024;

/**
 * An error as `CODE: message`, never with request header values (Node and undici errors name
 * addresses and phases, not headers). The policy's and the resolver's own messages stand alone.
 */
function describeError(err: unknown): string {
  const known = findKnown(err);
  if (known) return known.message;
  if (!(err instanceof Error)) return String(err);
  const { code } = err as { code?: unknown };
  const nested = (err as { errors?: unknown }).errors;
  // Happy eyeballs fails with an AggregateError whose own message is empty.
  const message =
    err.message ||
    (Array.isArray(nested) ? nested.map((e) => (e instanceof Error ? e.message : String(e))).join('; ') : '');
  // undici's per-phase timeouts (connect, headers, body) are the same "timeout" as the deadline.
  if (typeof code === 'string' && code.startsWith('UND_ERR_') && code.endsWith('_TIMEOUT')) return 'timeout';
  return `${typeof code === 'string' ? code : err.name}: ${message}`;
}

function findKnown(err: unknown, depth = 0): EgressRefused | DnsLookupFailed | undefined {
  if (err instanceof EgressRefused || err instanceof DnsLookupFailed) return err;
  if (!(err instanceof Error) || depth > 3) return undefined;
  const nested = (err as { errors?: unknown }).errors;
  for (const inner of [err.cause, ...(Array.isArray(nested) ? nested : [])]) {
    const found = findKnown(inner, depth + 1);
    if (found) return found;
  }
  return undefined;
}
