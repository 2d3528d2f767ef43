/**
 * The requests the API accepts, defined once: validation, types and error messages all come
 * from these schemas. A failure names the field and the rule.
 */
// zod/mini, imported as a namespace, lets the bundler keep only what is used (~26 KB, not ~450 KB).
import * as z from 'zod/mini';
import en from 'zod/v4/locales/en.js';
import { delays, flowLimits, jobLimits } from '../../lib/definitions.ts';
import { InvalidRequest } from './errors.ts';
import { jobStatuses, methods, type Method } from './job.ts';
import { unambiguousUrl } from './urls.ts';

const tokenPattern = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const forbiddenHeaders = new Set(['host', 'content-length', 'transfer-encoding', 'connection', 'upgrade', 'te', 'trailer', 'keep-alive']);

/** Hop-by-hop and framing headers are ours to set: a client's would smuggle or break requests. */
export function isForbiddenHeader(name: string): boolean {
  const lower = name.toLowerCase();
  return forbiddenHeaders.has(lower) || lower.startsWith('proxy-');
}

// zod/mini (the tree-shakable build of zod 4) has no default locale; full zod installs English on
// first use. Install it here so any message a schema below leaves to zod reads as it always has.
z.config(en());

/*
 * The descriptions below are the OpenAPI document's (core/openapi.ts): metadata only, they change
 * nothing a schema accepts. They say the rules that live in refinements, which JSON Schema cannot
 * express; what it can (lengths, ranges, required, unknown fields) it reads from the checks.
 */
const urlDescription =
  'An absolute http(s) URL with a host, at most 2048 characters, written exactly as WHATWG URL parsers write it so that every parser reads the same URL: ' +
  'no whitespace, control characters, backslash or non-ASCII characters (an internationalised host in its xn-- form), none of " \' < > ^ ` { | }, % only as %XX, ' +
  'exactly two slashes after the scheme, no credentials (user:password@), a port from 1 to 65535 without leading zeros, a host that is a DNS name, ' +
  'a dotted-decimal IPv4 address or a bracketed IPv6 address written as WHATWG writes it (not 127.1 or 2130706433), not percent-encoded, and no "." or ".." path segments. ' +
  'A URL whose host is or resolves to a private, loopback, link-local or reserved address is refused (400 at submit when known then, else a failed job), unless the deployment allows that range.';
const headersDescription =
  'Request headers to send, name to value. Names are RFC 9110 tokens; values hold only tabs, spaces, visible ASCII and U+0080-U+00FF (no CR, LF or NUL). ' +
  `At most ${jobLimits.maxHeaders} headers and ${jobLimits.headerBytes} bytes in all. Host, Content-Length, Transfer-Encoding, Connection, Upgrade, TE, Trailer, Keep-Alive and Proxy-* are refused by name. ` +
  'Idempotency-Key: <job_id> is added unless set here.';
const methodDescription = (absent: string) => `One of ${methods.join(', ')}, in any letter case (ASCII); ${absent}. Anything else, "" included, is a 400.`;
const attemptsDescription = (what: string, fallback: number) => `How many attempts ${what} may take, retries included (default ${fallback}).`;

/**
 * `new URL(value)`, or undefined. Not `URL.canParse`: once V8 optimises it (Node 20), its fast path
 * reads a Latin-1 string as UTF-8 bytes, so it refuses `http://bücher.example/` and accepts
 * `http://Ã\u0080.com/`, which `new URL` then throws on.
 */
function parsedUrl(value: string): URL | undefined {
  try {
    return new URL(value);
  } catch {
    return undefined;
  }
}

/**
 * An absolute http(s) URL that every parser reads as WHATWG does (core/urls.ts has the rules): the
 * raw text is judged before anything normalises it, and is then what is stored and sent.
 */
export const httpUrl = (field: string) =>
  z.string({ error: `${field} must be a string holding an absolute http(s) URL` }).check(
    z.maxLength(jobLimits.urlChars, `${field} must be at most ${jobLimits.urlChars} characters`),
    z.refine((value: string) => {
      const url = parsedUrl(value);
      return url !== undefined && (url.protocol === 'http:' || url.protocol === 'https:') && url.hostname.length > 0;
    }, `${field} must be an absolute http(s) URL with a host`),
    z.superRefine((value: string, ctx) => {
      const broken = unambiguousUrl(field, value);
      if (broken !== undefined) ctx.addIssue({ code: 'custom', message: broken });
    }),
    z.meta({ format: 'uri', description: urlDescription }),
  );

/** zod's record parser skips a `__proto__` key unseen: refuse it before it gets the chance. */
const noProtoKey = (value: unknown, payload: z.core.ParsePayload) => {
  if (typeof value === 'object' && value !== null && Object.hasOwn(value, '__proto__')) {
    payload.issues.push({ code: 'custom', message: 'headers: "__proto__" is not a valid header name', input: value });
  }
  return value;
};

const headerRecord = z
  .record(z.string(), z.string({ error: 'headers values must be strings' }), { error: 'headers must be an object of string to string' })
  .check(
    z.superRefine((value: Record<string, string>, ctx) => {
      const names = Object.keys(value);
      if (names.length > jobLimits.maxHeaders) ctx.addIssue({ code: 'custom', message: `headers may hold at most ${jobLimits.maxHeaders} headers` });
      let bytes = 0;
      for (const name of names) {
        const val = value[name] ?? '';
        bytes += Buffer.byteLength(name) + Buffer.byteLength(val) + 4;
        if (!tokenPattern.test(name)) ctx.addIssue({ code: 'custom', message: `headers: ${JSON.stringify(name)} is not a valid header name (RFC 9110 token)` });
        else if (isForbiddenHeader(name)) ctx.addIssue({ code: 'custom', message: `headers: ${JSON.stringify(name)} is not allowed (hop-by-hop or framing header)` });
        else if (/[\r\n\0]/.test(val)) ctx.addIssue({ code: 'custom', message: `headers: the value of ${JSON.stringify(name)} must not contain CR, LF or NUL` });
        // What no HTTP client can send would fail every attempt: refuse it now (RFC 9110 field-content).
        else if (/[^\t\x20-\x7e\x80-\xff]/.test(val)) {
          ctx.addIssue({ code: 'custom', message: `headers: the value of ${JSON.stringify(name)} may hold only tabs, spaces, visible ASCII and U+0080-U+00FF (RFC 9110 field-content)` });
        }
      }
      if (bytes > jobLimits.headerBytes) ctx.addIssue({ code: 'custom', message: `headers may total at most ${jobLimits.headerBytes} bytes` });
    }),
  );
// z.preprocess is z.pipe(z.transform(fn), schema); an issue from the transform stops the pipe.
const headers = z.pipe(z.transform(noProtoKey), headerRecord).check(z.describe(headersDescription));

const boundedInt = (field: string, range: { min: number; max: number; default: number }, description: string) => {
  const message = `${field} must be an integer from ${range.min} to ${range.max}`;
  return z.number({ error: message }).check(z.int(message), z.gte(range.min, message), z.lte(range.max, message), z.meta({ description, default: range.default }));
};
const maxAttempts = () => boundedInt('max_attempts', jobLimits.maxAttempts, attemptsDescription('the service call', jobLimits.maxAttempts.default));
const timeoutMs = () => boundedInt('timeout_ms', jobLimits.timeoutMs, `Each attempt's timeout, in milliseconds (default ${jobLimits.timeoutMs.default}).`);
const callbackMaxAttempts = () => boundedInt('callback_max_attempts', jobLimits.callbackMaxAttempts, attemptsDescription('the callback', jobLimits.callbackMaxAttempts.default));
const callbackField = () =>
  z.nullish(httpUrl('callback')).check(
    z.describe(
      'Where the outcome is POSTed once the job is completed or failed, signed per Standard Webhooks (webhook-id, webhook-timestamp, webhook-signature); absent or null: no callback. The URL rules are those of the job\'s URL.',
    ),
  );

const methodMessage = (field: string) => `${field} must be one of ${methods.join(', ')}`;
/**
 * ASCII letters only: `toUpperCase()` would also make "poſt" (long s) and "optıons" (dotless i)
 * POST and OPTIONS, a method the client never wrote.
 */
const asciiUpperCase = (value: string) => value.replace(/[a-z]+/g, (letters) => letters.toUpperCase());
// The refinement after the transform is what makes its cast true: whatever is not a Method fails there.
const methodField = (field: string) =>
  z
    .pipe(z.string({ error: methodMessage(field) }), z.transform((value: string) => asciiUpperCase(value) as Method))
    .check(z.refine((value: string) => (methods as readonly string[]).includes(value), methodMessage(field)), z.meta({ description: methodDescription('absent means POST'), examples: ['POST'] }));

const dataDescription = (field: string) =>
  `The request body. Absent or null: none. A string: sent verbatim, no Content-Type added. Any other JSON value: its JSON text, with Content-Type: application/json unless headers sets one.${field === 'body' ? ' Not with body_base64.' : ''}`;

/** POST /webhook. */
export const submitSchema = z
  .object({
    service: httpUrl('service'),
    methodtype: z.optional(methodField('methodtype')),
    headers: z.optional(headers),
    callback: callbackField(),
    data: z.optional(z.unknown().check(z.describe(dataDescription('data')))),
    max_attempts: z.optional(maxAttempts()),
    timeout_ms: z.optional(timeoutMs()),
    callback_max_attempts: z.optional(callbackMaxAttempts()),
  })
  .check(
    z.describe(
      `A job, as the seed API takes it: the request to make (service, methodtype, headers, data) and where to call back. The body holds at most ${jobLimits.requestBodyBytes} bytes (413 beyond). Other fields are ignored (the seed's credentials, client_id and verify_token, may be among them).`,
    ),
  );

export type SubmitRequest = z.infer<typeof submitSchema>;

const flowKeyMessage = `flow_key must be ${flowLimits.keyChars.min} to ${flowLimits.keyChars.max} visible ASCII characters`;
const flowRateMessage = `flow_rate must be a number from ${flowLimits.rate.min} to ${flowLimits.rate.max} (attempts a second)`;
const flowParallelismMessage = `flow_parallelism must be an integer from ${flowLimits.parallelism.min} to ${flowLimits.parallelism.max}`;

/** v1's flow control: the key and its settings (core/flow.ts enforces them across every worker). */
function flowFields() {
  return {
    flow_key: z.optional(
      z.string({ error: flowKeyMessage }).check(
        z.minLength(flowLimits.keyChars.min, flowKeyMessage),
        z.maxLength(flowLimits.keyChars.max, flowKeyMessage),
        z.regex(/^[\x21-\x7e]+$/, flowKeyMessage),
        z.describe(
          `Flow control: the jobs of one client with one flow_key start at most flow_rate attempts a second and have at most flow_parallelism attempts in flight, across every worker; the newest job's settings for a key apply. ${flowKeyMessage}; with flow_rate, flow_parallelism or both. A job held back by its key waits (it stays accepted, or running between retries): it never fails or uses an attempt for that. A 429 or 503 with Retry-After from the target holds every job of the key back until then. Keys are per client.`,
        ),
      ),
    ),
    flow_rate: z.optional(
      z.number({ error: flowRateMessage }).check(
        z.gte(flowLimits.rate.min, flowRateMessage),
        z.lte(flowLimits.rate.max, flowRateMessage),
        z.describe(`Attempts a second at most, for the jobs of flow_key (${flowLimits.rate.min} to ${flowLimits.rate.max}; only with flow_key). No one-second window sees more starts.`),
      ),
    ),
    flow_parallelism: z.optional(
      z.number({ error: flowParallelismMessage }).check(
        z.int(flowParallelismMessage),
        z.gte(flowLimits.parallelism.min, flowParallelismMessage),
        z.lte(flowLimits.parallelism.max, flowParallelismMessage),
        z.describe(`Attempts in flight at most, for the jobs of flow_key (${flowLimits.parallelism.min} to ${flowLimits.parallelism.max}; only with flow_key).`),
      ),
    ),
  };
}

/** flow_rate and flow_parallelism belong to a flow_key, and a flow_key to at least one of them. */
const flowRules = z.superRefine<{ flow_key?: string | undefined; flow_rate?: number | undefined; flow_parallelism?: number | undefined }>((job, ctx) => {
  for (const field of ['flow_rate', 'flow_parallelism'] as const) {
    if (job[field] !== undefined && job.flow_key === undefined) {
      ctx.addIssue({ code: 'custom', path: [field], message: `${field}: only with flow_key (the key whose jobs it limits)` });
    }
  }
  if (job.flow_key !== undefined && job.flow_rate === undefined && job.flow_parallelism === undefined) {
    ctx.addIssue({ code: 'custom', path: ['flow_key'], message: 'flow_key: needs flow_rate, flow_parallelism or both (a key alone limits nothing)' });
  }
});

/**
 * One job as v1 takes it (POST /v1/jobs, each of POST /v1/jobs/batch's): the seed's fields
 * under plainer names, with the seed's rules, and nothing else: an unknown field is refused
 * (the seed runs a job whose `calback` was misspelt, with no callback).
 */
const delaySMessage = `delay_s must be an integer from 0 to ${delays.maxSeconds} (365 days)`;
/** v1's delays (core/delay.ts): a time, or seconds from now; not both. */
const delayFields = {
  not_before: z.optional(
    z.iso.datetime({ offset: true, error: 'not_before must be an RFC 3339 time with a time zone offset or Z, e.g. 2027-03-01T09:30:00Z or 2027-03-01T10:30:00+01:00' }).check(
      z.meta({
        description: `The first attempt starts no earlier than this RFC 3339 time (with an offset or Z), and within 2 s after it for a time up to 15 minutes ahead, within 60 s beyond. A time past means now; more than ${delays.maxSeconds} seconds (365 days) ahead is a 400. Until then the job is accepted, next_attempt_at says when, and it can be cancelled. Not with delay_s.`,
        examples: ['2027-03-01T09:30:00Z'],
      }),
    ),
  ),
  delay_s: z.optional(
    z.number({ error: delaySMessage }).check(
      z.int(delaySMessage),
      z.gte(0, delaySMessage),
      z.lte(delays.maxSeconds, delaySMessage),
      z.meta({ description: 'The first attempt starts no earlier than this many seconds after the job is accepted (0: now), as not_before does. Not with not_before.', examples: [3600] }),
    ),
  ),
};

const v1JobFields = {
  url: httpUrl('url'),
  method: z.optional(methodField('method')),
  headers: z.optional(headers),
  body: z.optional(z.unknown().check(z.describe(dataDescription('body')))),
  body_base64: z.optional(
    z.string({ error: 'body_base64 must be a string of base64 (RFC 4648) text' }).check(
      z.refine((value: string) => /^[A-Za-z0-9+/]*={0,2}$/.test(value) && value.length % 4 === 0, 'body_base64 must be base64 (RFC 4648, padded) text'),
      z.meta({ contentEncoding: 'base64', description: 'The request body as bytes, in base64 (RFC 4648, padded), sent decoded; no Content-Type added. Not with body.' }),
    ),
  ),
  callback: callbackField(),
  max_attempts: z.optional(maxAttempts()),
  timeout_ms: z.optional(timeoutMs()),
  callback_max_attempts: z.optional(callbackMaxAttempts()),
  ...delayFields,
  ...flowFields(),
};

const v1JobDescription =
  `A job: the request to make (url, method, headers, and body or body_base64, not both) and where to call back. An unknown field is a 400 that names it. The request body holds at most ${jobLimits.requestBodyBytes} bytes (413 beyond).`;

const notBodyAndBase64 = z.refine<{ body?: unknown; body_base64?: string | undefined }>(
  (job) => !(job.body !== undefined && job.body_base64 !== undefined),
  { message: 'body_base64: not with body (a job has one body: text or JSON in body, bytes in body_base64)', path: ['body_base64'] },
);

const notBothDelays = z.refine<{ not_before?: string | undefined; delay_s?: number | undefined }>(
  (job) => !(job.not_before !== undefined && job.delay_s !== undefined),
  { message: 'not_before and delay_s: give one of them, not both (a time, or seconds from now)', path: ['not_before'] },
);

export const v1JobSchema = z.strictObject(v1JobFields).check(notBodyAndBase64, notBothDelays, flowRules, z.describe(v1JobDescription));
export type V1JobRequest = z.infer<typeof v1JobSchema>;

/** Idempotency-Key's rule, for the header and for a batch job's `idempotency_key`. */
export const idempotencyKeyRule = { minLength: 1, maxLength: 255, pattern: /^[\x21-\x7e]+$/ } as const;

/** A job of a batch: a v1 job, and the Idempotency-Key it may carry in the body. */
export const v1BatchJobSchema = z
  .strictObject({
    ...v1JobFields,
    idempotency_key: z.optional(
      z.string({ error: 'idempotency_key must be a string' }).check(
        z.minLength(idempotencyKeyRule.minLength, 'idempotency_key must be 1 to 255 visible ASCII characters'),
        z.maxLength(idempotencyKeyRule.maxLength, 'idempotency_key must be 1 to 255 visible ASCII characters'),
        z.regex(idempotencyKeyRule.pattern, 'idempotency_key must be 1 to 255 visible ASCII characters'),
        z.describe("This job's Idempotency-Key, as POST /v1/jobs takes it in its header: a repeat with the same key within 24 hours gets the first job's result and creates nothing."),
      ),
    ),
  })
  .check(notBodyAndBase64, notBothDelays, flowRules, z.describe(`${v1JobDescription} In a batch it may carry its idempotency_key.`));

/** POST /v1/jobs/batch: the envelope. Each job is judged on its own, so that one bad job refuses only itself. */
export const batchLimits = { min: 1, max: 100 } as const;
export const v1BatchSchema = z.strictObject({
  jobs: z
    .array(z.unknown(), { error: 'jobs must be an array of jobs' })
    .check(
      z.minLength(batchLimits.min, `jobs must hold ${batchLimits.min} to ${batchLimits.max} jobs`),
      z.maxLength(batchLimits.max, `jobs must hold ${batchLimits.min} to ${batchLimits.max} jobs`),
      z.describe(`${batchLimits.min} to ${batchLimits.max} jobs, each judged on its own: one that is not valid is refused in its result, the others are accepted.`),
    ),
});

/**
 * POST /v1/schedules: a cron, its time zone, and the job each run submits, validated exactly as
 * POST /v1/jobs validates one. The cron's rules (core/cron.ts: what EventBridge Scheduler can
 * run) are checked after the schema, naming the rule.
 */
export const v1ScheduleSchema = z
  .strictObject({
    cron: z.string({ error: 'cron must be a string of five fields: minute hour day-of-month month day-of-week' }).check(
      z.maxLength(200, 'cron must be at most 200 characters'),
      z.meta({
        description:
          'Five fields: minute (0-59) hour (0-23) day-of-month (1-31) month (1-12 or JAN-DEC) day-of-week (0-7 or SUN-SAT, 0 and 7 Sunday), each *, a number, a range a-b, a step */n or a-b/n, or a list of them. ' +
          'One of day-of-month and day-of-week must be * (EventBridge Scheduler runs one or the other). No L, W, #, ? or @nicknames.',
        examples: ['*/15 9-17 * * 1-5'],
      }),
    ),
    timezone: z.optional(
      z.string({ error: 'timezone must be a string holding an IANA time zone name' }).check(
        z.maxLength(64, 'timezone must be at most 64 characters'),
        z.meta({
          description:
            'The IANA time zone the cron is read in (default UTC). Daylight saving time as EventBridge Scheduler has it: a run whose time is skipped (spring forward) is skipped; a time repeated (fall back) runs once.',
          examples: ['Europe/Paris'],
        }),
      ),
    ),
    job: v1JobSchema,
  })
  .check(z.describe('A schedule: each time its cron matches, in its time zone, a new job is submitted as POST /v1/jobs would take `job`; that job\'s record carries the schedule_id.'));
export type V1ScheduleRequest = z.infer<typeof v1ScheduleSchema>;

export const listLimits = { min: 1, max: 100, default: 20 } as const;

/** GET /v1/jobs's query: strings in, as a query string has them. */
export const v1ListQuerySchema = z.strictObject({
  status: z.optional(z.enum(jobStatuses, { error: `status must be one of ${jobStatuses.join(', ')}` }).check(z.describe('Only the jobs in this status.'))),
  limit: z.optional(
    z.pipe(
      z.string().check(z.regex(/^[0-9]{1,4}$/, `limit must be an integer from ${listLimits.min} to ${listLimits.max}`)),
      z.transform((value: string) => Number(value)),
    ).check(
      z.gte(listLimits.min, `limit must be an integer from ${listLimits.min} to ${listLimits.max}`),
      z.lte(listLimits.max, `limit must be an integer from ${listLimits.min} to ${listLimits.max}`),
      z.meta({ description: `How many jobs a page holds at most: an integer from ${listLimits.min} to ${listLimits.max} (default ${listLimits.default}).`, examples: [String(listLimits.default)] }),
    ),
  ),
  cursor: z.optional(
    z.string().check(
      z.minLength(1, 'cursor must not be empty'),
      z.maxLength(2048, 'cursor must be at most 2048 characters'),
      z.describe("The page after the one whose next_cursor this is; absent: the first page. Opaque: pass it back as it came."),
    ),
  ),
});
export type V1ListQuery = z.infer<typeof v1ListQuerySchema>;

/** Validates `input` against `schema`, or throws InvalidRequest naming the first field at fault. */
export function parse<T extends z.ZodMiniType>(schema: T, input: unknown): z.infer<T> {
  const result = schema.safeParse(input, { reportInput: true });
  if (result.success) return result.data;
  // An unknown field first: a misspelt one is likely why another looks missing.
  const issue = result.error.issues.find((found) => found.code === 'unrecognized_keys') ?? result.error.issues[0];
  const field = issue?.path.map(String).join('.') ?? '';
  let message = issue?.message ?? 'invalid request';
  if (issue?.code === 'invalid_type' && issue.input === undefined) message = `${field} is required`;
  else if (issue?.code === 'unrecognized_keys') {
    throw new InvalidRequest(unknownFieldsMessage(issue.keys, field, fieldsAt(schema, issue.path)));
  }
  else if (field && !message.startsWith(field.split('.')[0] ?? field)) message = `${field}: ${message}`;
  throw new InvalidRequest(message);
}

/** Every field name v1 knows, for a suggestion when one is misspelt. */
const knownFields = [...Object.keys(v1JobFields), 'idempotency_key', 'jobs', 'status', 'limit', 'cursor', 'cron', 'timezone', 'job'];

/** How many single-character edits make `a` into `b` (Levenshtein), for did-you-mean. */
function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) current[j] = Math.min((previous[j] ?? 0) + 1, (current[j - 1] ?? 0) + 1, (previous[j - 1] ?? 0) + (a[i - 1] === b[j - 1] ? 0 : 1));
    previous = current;
  }
  return previous[b.length] ?? 0;
}

/**
 * The fields the object at `path` of `schema` takes (through arrays and optional fields), where
 * the schema says: a suggestion then names a field of that object, not one of another (a
 * schedule's misspelt "jobb" is its "job", not a batch's "jobs").
 */
function fieldsAt(schema: z.ZodMiniType, path: readonly PropertyKey[]): readonly string[] | undefined {
  type Def = { type?: string; shape?: Record<string, z.ZodMiniType>; element?: z.ZodMiniType; innerType?: z.ZodMiniType };
  const defOf = (node: z.ZodMiniType): Def => (node as unknown as { _zod: { def: Def } })._zod.def;
  const unwrap = (node: z.ZodMiniType): z.ZodMiniType => {
    const def = defOf(node);
    return def.type === 'optional' && def.innerType ? unwrap(def.innerType) : node;
  };
  let node: z.ZodMiniType | undefined = unwrap(schema);
  for (const step of path) {
    const def: Def = defOf(node);
    node = typeof step === 'number' ? def.element : def.shape?.[String(step)];
    if (!node) return undefined;
    node = unwrap(node);
  }
  const shape = defOf(node).shape;
  return shape ? Object.keys(shape) : undefined;
}

function unknownFieldsMessage(keys: readonly string[], at: string, fields: readonly string[] = knownFields): string {
  const named = keys.map((key) => {
    const near = fields.filter((known) => known !== key && editDistance(key.toLowerCase(), known) <= 2).sort((x, y) => editDistance(key, x) - editDistance(key, y))[0];
    return `${JSON.stringify(key)}${near ? ` (did you mean ${JSON.stringify(near)}?)` : ''}`;
  });
  return `${at ? `${at}: ` : ''}unknown field${keys.length > 1 ? 's' : ''} ${named.join(', ')}: v1 takes only the fields it documents`;
}

/** A job id is a UUID; anything else cannot name a job. */
export const jobIdPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/i;
