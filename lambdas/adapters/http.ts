/**
 * The HttpClient on node:http and node:https: one attempt at a service or callback URL, with the
 * egress policy enforced on the address actually connected to.
 *
 * ```ts
 * const http = new NodeHttpClient({ policy: EgressPolicy.fromEnv(process.env.EGRESS_ALLOW_CIDRS) });
 * const output = await http.send({ url, method: 'POST', headers, body, timeoutMs: 10_000 });
 * await http.close();
 * ```
 *
 * How the policy holds (the shape of Svix's webhook_http_client): names are resolved by the
 * agents' own `lookup`, which net.connect calls and which checks every address and hands back
 * only those, so there is no second resolution to rebind. IP literals never reach a lookup, so
 * `send` checks the URL first. Either way a refused target receives no byte.
 */
import { Agent as HttpAgent, request as httpRequest } from 'node:http';
import type { ClientRequest, IncomingMessage, OutgoingHttpHeaders } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import type { LookupFunction } from 'node:net';
import type { LookupAddress } from 'node:dns';
import { jobLimits } from '../../lib/definitions.ts';
import { DnsLookupFailed, EgressRefused, resolveChecked } from '../core/egress.ts';
import type { EgressPolicy, Lookup } from '../core/egress.ts';
import type { AttemptOutput } from '../core/job.ts';
import { systemClock } from '../core/ports.ts';
import type { Clock, HttpClient, OutboundRequest } from '../core/ports.ts';

export interface NodeHttpClientOptions {
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
/** Node's default; pinned so --max-http-header-size cannot change what a target may send. */
const maxResponseHeaderBytes = 16 * 1024;
/** Methods whose empty body is still announced with `content-length: 0` (RFC 9110 8.6). */
const payloadMethods = new Set(['POST', 'PUT', 'PATCH']);

type Answer = Omit<AttemptOutput, 'started' | 'durationMs'>;
type Seen = Pick<Answer, 'statusCode' | 'headers'>;

export class NodeHttpClient implements HttpClient {
  private readonly policy: EgressPolicy;
  private readonly lookup: Lookup | undefined;
  private readonly clock: Clock;
  /** One pool per scheme for the client's lifetime, so repeated calls to a target reuse connections. */
  private readonly agents: { 'http:': HttpAgent; 'https:': HttpsAgent };

  constructor(options: NodeHttpClientOptions) {
    this.policy = options.policy;
    this.lookup = options.lookup;
    this.clock = options.clock ?? systemClock;
    const agentOptions = {
      keepAlive: true,
      keepAliveMsecs: 1_000,
      maxSockets: connectionsPerOrigin,
      // Set on every socket; the agent acts on it only for an idle pooled socket, which it closes.
      // A busy socket's timeout is ignored: the attempt's own deadline (send) bounds an attempt.
      timeout: keepAliveTimeoutMs,
      // Passed through to net.connect, which calls it for every name it connects to.
      lookup: this.checkedLookup,
    };
    this.agents = { 'http:': new HttpAgent(agentOptions), 'https:': new HttpsAgent(agentOptions) };
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
    const seen: Seen = {};
    const controller = new AbortController();
    let timer: NodeJS.Timeout | undefined;
    // One deadline for lookup, connect, headers and body together: aborting destroys the
    // request and its socket whichever phase it is in (a pending lookup included).
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

  /** Destroys both pools and their sockets. */
  async close(): Promise<void> {
    this.agents['http:'].destroy();
    this.agents['https:'].destroy();
  }

  private attempt(request: OutboundRequest, signal: AbortSignal, seen: Seen): Promise<Answer> {
    return new Promise<Answer>((resolve, reject) => {
      const url = new URL(request.url);
      const scheme = url.protocol === 'https:' ? 'https:' : 'http:';
      const body = Buffer.from(request.body ?? '', request.bodyEncoding === 'base64' ? 'base64' : 'utf8');
      const bodyBytes = body.length;

      // Host first, as on the wire; then the caller's headers as given, repeats (by case) kept.
      const headers: OutgoingHttpHeaders = { host: url.host };
      const names = new Map<string, string>();
      for (const [name, value] of Object.entries(request.headers)) {
        const lower = name.toLowerCase();
        const first = names.get(lower);
        if (first === undefined) {
          names.set(lower, name);
          headers[name] = value;
        } else {
          const earlier = headers[first];
          headers[first] = [...(Array.isArray(earlier) ? earlier : [String(earlier)]), value];
        }
      }
      if (!names.has('user-agent')) headers['user-agent'] = userAgent;
      if (bodyBytes > 0 || payloadMethods.has(request.method.toUpperCase())) headers['content-length'] = bodyBytes;

      // node:http never follows redirects: a 3xx is the answer.
      const req: ClientRequest = (scheme === 'https:' ? httpsRequest : httpRequest)({
        agent: this.agents[scheme],
        protocol: scheme,
        hostname: url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname,
        port: url.port,
        path: `${url.pathname}${url.search}`,
        method: request.method,
        headers,
        signal,
        maxHeaderSize: maxResponseHeaderBytes,
        insecureHTTPParser: false,
      });
      req.on('error', reject);
      req.on('response', (res: IncomingMessage) => {
        seen.statusCode = res.statusCode ?? 0;
        seen.headers = keptHeaders(joinedHeaders(res.rawHeaders));
        readBody(res).then(
          (captured) => resolve({ statusCode: seen.statusCode, headers: seen.headers, ...captured }),
          reject,
        );
      });
      req.end(body);
    });
  }
}

/** Keeps the first responseBodyBytes; counts the rest without keeping it, so memory stays flat. */
async function readBody(res: IncomingMessage): Promise<Pick<Answer, 'body' | 'bodyEncoding' | 'bodyBytes' | 'truncated'>> {
  const limit = jobLimits.responseBodyBytes;
  const kept = Buffer.allocUnsafe(limit);
  let keptBytes = 0;
  let bodyBytes = 0;
  for await (const chunk of res as AsyncIterable<Buffer>) {
    if (keptBytes < limit) keptBytes += chunk.copy(kept, keptBytes, 0, Math.min(chunk.length, limit - keptBytes));
    bodyBytes += chunk.length;
  }
  const truncated = bodyBytes > keptBytes;
  return { ...encodeBody(kept.subarray(0, keptBytes), truncated), bodyBytes, truncated };
}

/**
 * Response headers by lower-case name in the order first received, a repeated one's values in
 * order (message.rawHeaders: names as sent, values as latin1, nothing merged or dropped).
 */
function joinedHeaders(raw: readonly string[]): Map<string, string[]> {
  const headers = new Map<string, string[]>();
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = (raw[i] ?? '').toLowerCase();
    const value = raw[i + 1] ?? '';
    const values = headers.get(name);
    if (values) values.push(value);
    else headers.set(name, [value]);
  }
  return headers;
}

/**
 * Hop-by-hop headers (RFC 9110, 7.6.1) describe our connection to the target, not its answer:
 * a record of the answer leaves them out, as a proxy would.
 */
const hopByHop = new Set(['connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade']);

/**
 * Response headers as one string each (repeats joined with ", "), in the order received, up to
 * jobLimits.responseHeaderBytes counted as on the wire; a header that does not fit is dropped
 * and smaller ones after it are still kept. Hop-by-hop headers are not kept.
 */
function keptHeaders(headers: Map<string, string[]>): Record<string, string> {
  const kept: Record<string, string> = {};
  let budget = jobLimits.responseHeaderBytes;
  for (const [name, values] of headers) {
    if (hopByHop.has(name)) continue;
    const value = values.join(', ');
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
 * An error as `CODE: message`, never with request header values (Node's errors name addresses,
 * phases and at most a header's name). The policy's and the resolver's own messages stand alone.
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
  // node:http ends a response cut short by the peer with a bare "aborted", which reads as if we
  // had given up: say what happened. (Cut before the headers, it is "socket hang up".)
  if (code === 'ECONNRESET' && message === 'aborted') return 'ECONNRESET: the connection closed mid-response';
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
