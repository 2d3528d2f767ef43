/**
 * How a job lies in the jobs table, laid out for the write units it costs. DynamoDB bills a
 * write one unit per started KB of the larger of the item before and after, so:
 * - the request sits beside the job's state, in the one item every transition rewrites, when
 *   both fit in one KB (most jobs: a job then costs one unit to submit, one to lease and one to
 *   settle); a larger request gets an item of its own, written once, so that a transition never
 *   rewrites it;
 * - the write that makes a job final drops the request: nothing sends it again;
 * - what no condition reads is kept packed (brotli): the fields a job never changes, the request, and
 *   the last output with the history (written together by every attempt). The fields that
 *   conditions, the sweeper's index and TTL read stay plain.
 * The core sees none of this: jobs and requests come back as they went in.
 */
import { brotliCompressSync, brotliDecompressSync, constants } from 'node:zlib';
import { finalStatuses, type AttemptOutput, type Job, type JobRequest } from '../core/job.ts';
import type { JobChanges } from '../core/ports.ts';
import { dynamoItemSize } from './item-size.ts';

export const JOB = 'job';
export const REQUEST = 'request';

/** DynamoDB's write unit. */
const writeUnitBytes = 1024;

/**
 * Short stored names for the plain fields: every byte of a job item is paid for at each of its
 * writes. The sweeper's index keys (`sweep`, `created`) and TTL's `expiresAt` keep theirs.
 */
const shortName: Readonly<Record<string, string>> = {
  lastUpdate: 'u',
  status: 's',
  attempts: 'a',
  leaseUntil: 'l',
  nextAttemptAt: 'at',
  notified: 'n',
  notifyoutput: 'no',
  notifyAttempts: 'na',
  notifyLeaseUntil: 'nl',
  nextNotifyAt: 'nat',
};
const longName = new Map(Object.entries(shortName).map(([long, short]) => [short, long]));

/** The attribute a job field is stored as. */
export const storedName = (field: string): string => shortName[field] ?? field;

const shortNames = (fields: Record<string, unknown>): Record<string, unknown> =>
  Object.fromEntries(Object.entries(fields).map(([name, value]) => [storedName(name), value]));

/** Fields a job never changes after submit: packed together, read with the job. */
const specFields = ['clientId', 'service', 'methodtype', 'callback', 'maxAttempts', 'timeoutMs', 'callbackMaxAttempts'] as const;

/** Fields each attempt rewrites together, never read by a condition: packed together. */
const resultFields = ['output', 'history'] as const;

/**
 * A blob: JSON, then (after a NUL, which JSON text never holds raw) a text kept apart so that
 * it is not JSON-escaped, brotli-compressed in text mode. Brotli's built-in dictionary knows
 * JSON and HTTP words: a 1 KB JSON body packs about 5% smaller than with deflate.
 */
function packed(value: unknown, text?: string | null): Uint8Array {
  const raw = text === undefined || text === null ? JSON.stringify(value) : `${JSON.stringify(value)}\u0000${text}`;
  const bytes = Buffer.from(raw, 'utf8');
  return brotliCompressSync(bytes, {
    params: { [constants.BROTLI_PARAM_MODE]: constants.BROTLI_MODE_TEXT, [constants.BROTLI_PARAM_QUALITY]: 5, [constants.BROTLI_PARAM_SIZE_HINT]: bytes.length },
  });
}

function unpacked<T>(bytes: unknown): { value: T; text?: string } | undefined {
  if (!(bytes instanceof Uint8Array)) return undefined;
  const raw = brotliDecompressSync(bytes).toString('utf8');
  const split = raw.indexOf('\u0000');
  return split < 0 ? { value: JSON.parse(raw) as T } : { value: JSON.parse(raw.slice(0, split)) as T, text: raw.slice(split + 1) };
}

/** The last output and the history, its body kept apart. */
function packedResult(fields: Record<string, unknown>): Uint8Array {
  const output = fields['output'] as AttemptOutput | null;
  if (!output || output.body === undefined) return packed({ output, history: fields['history'] });
  const { body, ...rest } = output;
  return packed({ output: rest, history: fields['history'] }, body);
}

function unpackedResult(bytes: unknown): Record<string, unknown> {
  const found = unpacked<{ output: AttemptOutput | null; history: unknown }>(bytes);
  if (!found) return {};
  const { output, history } = found.value;
  return { output: output && found.text !== undefined ? { ...output, body: found.text } : output, history };
}

function pick(fields: Record<string, unknown>, names: readonly string[]): Record<string, unknown> {
  return Object.fromEntries(names.filter((name) => fields[name] !== undefined).map((name) => [name, fields[name]]));
}

function omit(fields: Record<string, unknown>, names: readonly string[]): Record<string, unknown> {
  return Object.fromEntries(Object.entries(fields).filter(([name, value]) => !names.includes(name) && value !== undefined));
}

/**
 * The item(s) a new job is written as: one when its request fits beside its state in a write
 * unit, else the state and a request item of its own.
 */
export function newJobItems(job: Job, request: JobRequest): Array<Record<string, unknown>> {
  const { jobId, ...fields } = job as unknown as Record<string, unknown> & { jobId: string };
  const item: Record<string, unknown> = {
    pk: jobId,
    sk: JOB,
    ...shortNames(omit(fields, [...specFields, ...resultFields])),
    spec: packed(pick(fields, specFields)),
    // A new job has no output and no history yet: nothing to pack (see jobFromItem).
    ...(fields['output'] === null && Array.isArray(fields['history']) && fields['history'].length === 0 ? {} : { result: packedResult(fields) }),
  };
  const stored = packed({ headers: request.headers }, request.body);
  const together = { ...item, request: stored };
  if (dynamoItemSize(together) <= writeUnitBytes) return [together];
  return [item, { pk: jobId, sk: REQUEST, request: stored, expiresAt: job.expiresAt }];
}

/** The job in a state item (the request beside it, if any, stays out of it). */
export function jobFromItem(item: Record<string, unknown>): Job {
  const { pk, sk: _sk, request: _request, spec, result, ...fields } = item;
  const plain = Object.fromEntries(Object.entries(fields).map(([name, value]) => [longName.get(name) ?? name, value]));
  return { output: null, history: [], ...plain, ...unpacked<Record<string, unknown>>(spec)?.value, ...unpackedResult(result), jobId: String(pk) } as unknown as Job;
}

/**
 * A job item of the first layout (every field plain, under its long name): a local DATA_DIR
 * kept across the upgrade may hold some. jobFromItem reads them as they are; one that is still
 * to run is rewritten first (DynamoJobStore.unsettled), since conditions name today's fields.
 */
export const isFirstLayout = (item: Record<string, unknown>): boolean => 'status' in item && !(storedName('status') in item);

/** A request item of the first layout: url, method, headers and body as plain fields. */
export function firstLayoutRequest(item: Record<string, unknown> | undefined, job: Pick<Job, 'service' | 'methodtype'>): JobRequest | undefined {
  if (!item || !('headers' in item)) return undefined;
  const { url, method, headers, body } = item as Partial<JobRequest>;
  return { url: url ?? job.service, method: method ?? job.methodtype, headers: headers ?? {}, body: body ?? null };
}

/** The request stored in a state item or in an item of its own, if it is there. */
export function requestFromItem(item: Record<string, unknown>, job: Pick<Job, 'service' | 'methodtype'>): JobRequest | undefined {
  const stored = unpacked<Pick<JobRequest, 'headers'>>(item['request']);
  return stored ? { url: job.service, method: job.methodtype, headers: stored.value.headers, body: stored.text ?? null } : undefined;
}

/** A change of the core's, as attributes to set and to remove. */
export function storedChanges(changes: JobChanges): { set: Record<string, unknown>; remove: string[] } {
  const { remove = [], ...fields } = changes as JobChanges & Record<string, unknown>;
  const changed = specFields.filter((name) => name in fields);
  if (changed.length > 0) throw new Error(`a job's ${changed.join(', ')} never change after submit`);
  const set = shortNames(omit(fields, resultFields));
  const results = resultFields.filter((name) => fields[name] !== undefined);
  if (results.length === resultFields.length) set['result'] = packedResult(fields);
  else if (results.length > 0) throw new Error('an output is written with the history it ends (both, or neither)');
  const removed: string[] = remove.filter((field) => fields[field] === undefined).map(storedName);
  if (changes.status !== undefined && finalStatuses.includes(changes.status)) removed.push('request');
  return { set, remove: removed };
}
