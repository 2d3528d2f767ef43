/**
 * The requests the API accepts, defined once: validation, types and error messages all come
 * from these schemas. A failure names the field and the rule.
 */
// zod/mini, imported as a namespace, lets the bundler keep only what is used (~26 KB, not ~450 KB).
import * as z from 'zod/mini';
import en from 'zod/v4/locales/en.js';
import { jobLimits } from '../../lib/definitions.ts';
import { InvalidRequest } from './errors.ts';
import { methods, type Method } from './job.ts';
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
const headers = z.pipe(z.transform(noProtoKey), headerRecord);

const boundedInt = (field: string, range: { min: number; max: number }) => {
  const message = `${field} must be an integer from ${range.min} to ${range.max}`;
  return z.number({ error: message }).check(z.int(message), z.gte(range.min, message), z.lte(range.max, message));
};

const methodMessage = `methodtype must be one of ${methods.join(', ')}`;
/**
 * ASCII letters only: `toUpperCase()` would also make "poſt" (long s) and "optıons" (dotless i)
 * POST and OPTIONS, a method the client never wrote.
 */
const asciiUpperCase = (value: string) => value.replace(/[a-z]+/g, (letters) => letters.toUpperCase());
// The refinement after the transform is what makes its cast true: whatever is not a Method fails there.
const methodtype = z
  .pipe(z.string({ error: methodMessage }), z.transform((value: string) => asciiUpperCase(value) as Method))
  .check(z.refine((value: string) => (methods as readonly string[]).includes(value), methodMessage));

/** POST /webhook. */
export const submitSchema = z.object({
  service: httpUrl('service'),
  methodtype: z.optional(methodtype),
  headers: z.optional(headers),
  callback: z.nullish(httpUrl('callback')),
  data: z.optional(z.unknown()),
  max_attempts: z.optional(boundedInt('max_attempts', jobLimits.maxAttempts)),
  timeout_ms: z.optional(boundedInt('timeout_ms', jobLimits.timeoutMs)),
  callback_max_attempts: z.optional(boundedInt('callback_max_attempts', jobLimits.callbackMaxAttempts)),
});

export type SubmitRequest = z.infer<typeof submitSchema>;

/** Validates `input` against `schema`, or throws InvalidRequest naming the first field at fault. */
export function parse<T extends z.ZodMiniType>(schema: T, input: unknown): z.infer<T> {
  const result = schema.safeParse(input, { reportInput: true });
  if (result.success) return result.data;
  const issue = result.error.issues[0];
  const field = issue?.path.map(String).join('.') ?? '';
  let message = issue?.message ?? 'invalid request';
  if (issue?.code === 'invalid_type' && issue.input === undefined) message = `${field} is required`;
  else if (field && !message.startsWith(field.split('.')[0] ?? field)) message = `${field}: ${message}`;
  throw new InvalidRequest(message);
}

/** A job id is a UUID; anything else cannot name a job. */
export const jobIdPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/i;
