/**
 * How a job lies in the jobs table, written to be read by a person as much as by the code:
 * - one item per job (`sk = "job"`), rewritten at each transition, whose attributes are the
 *   fields of `GET /status` under the names it shows them by (`status`, `attempts`,
 *   `max_attempts`, `next_attempt_at`, `output`, `notified`, ...), instants as ISO-8601 text;
 * - a field without a value (null, an empty history) is absent;
 * - the request it sends, as a `request` map beside the state when both, leased, fit in one
 *   write unit (1 KB: a job then costs one unit per write), else in an item of its own (`sk = "request"`),
 *   written before the job so that whoever finds the job finds its request. It is kept as long
 *   as the job, final or not: a replay (POST /v1/jobs/{id}/replay) sends it again, in a new job;
 * - the output of each attempt that was followed by a retry, in an item of its own
 *   (`sk = "attempt#0001"`, the number zero-padded so the items sort by it), its fields plain as
 *   the job's `output` has them, with the attempt's number and the job's `expiresAt`: a job that
 *   succeeds at once has none, and its one output is the job's;
 * - only job items carry `clientId` (with `created`, the client index's keys): request, attempt,
 *   Idempotency-Key and sweeper items never do, so the index holds jobs alone;
 * - only bodies and header maps may be kept compressed: a binary attribute, with
 *   `bodyCompression` / `headersCompression: "br"` (brotli) beside it. Short ones stay text.
 * The core sees none of this: jobs and requests come back as they went in.
 */
import { brotliCompressSync, brotliDecompressSync, constants } from 'node:zlib';
import { tables } from '../../lib/definitions.ts';
import type { Attempt, AttemptOutput, Job, JobRequest } from '../core/job.ts';
import type { JobChanges, UnsettledJob } from '../core/ports.ts';
import { dynamoItemSize } from './item-size.ts';

export const JOB = 'job';
export const REQUEST = 'request';
/** The sort key prefix of a kept attempt's item. */
export const ATTEMPT = 'attempt#';
/** The sort key of attempt `n`'s item: zero-padded, so that the partition's items sort by number. */
export const attemptSk = (n: number): string => `${ATTEMPT}${String(n).padStart(4, '0')}`;

/** DynamoDB's write unit. */
const writeUnitBytes = 1024;



type Item = Record<string, unknown>;
type Field = Exclude<keyof Job, 'jobId'>;

/** Each field of a Job and the attribute it is stored as: the name GET /status shows it by. */
const attributeOf: Readonly<Record<Field, string>> = {
  clientId: 'clientId',
  created: 'created',
  lastUpdate: 'lastUpdate',
  service: 'service',
  methodtype: 'methodtype',
  callback: 'callback',
  status: 'status',
  attempts: 'attempts',
  maxAttempts: 'max_attempts',
  timeoutMs: 'timeout_ms',
  output: 'output',
  history: 'history',
  nextAttemptAt: 'next_attempt_at',
  leaseUntil: 'lease_until',
  notified: 'notified',
  notifyoutput: 'notifyoutput',
  notifyAttempts: 'notify_attempts',
  callbackMaxAttempts: 'callback_max_attempts',
  notifyLeaseUntil: 'notify_lease_until',
  nextNotifyAt: 'next_notify_at',
  sweep: 'sweep',
  expiresAt: 'expiresAt',
  replayOf: 'replay_of',
};
const fieldOf = new Map(Object.entries(attributeOf).map(([field, attribute]) => [attribute, field as Field]));

/** The attribute a job field is stored as. */
export const storedName = (field: string): string => attributeOf[field as Field] ?? field;

/** Fields that hold an instant (epoch ms in the core): stored as ISO-8601 text, which orders as the instant does. */
const instantFields: ReadonlySet<string> = new Set<Field>(['nextAttemptAt', 'leaseUntil', 'notifyLeaseUntil', 'nextNotifyAt']);

/** The compression a packed attribute names beside it. */
const compression = 'br';
/** Text shorter than this is kept as text: compressing it saves too little to cost a reader. */
const packFromBytes = 200;

/** Text as it is stored: brotli-compressed bytes when that is worth it, else the text. */
function packText(text: string): { value: string | Uint8Array; packed: boolean } {
  const bytes = Buffer.from(text, 'utf8');
  if (bytes.length < packFromBytes) return { value: text, packed: false };
  // Brotli's built-in dictionary knows JSON and HTTP words; quality 5 is a fraction of 11's CPU.
  const packed = brotliCompressSync(bytes, {
    params: { [constants.BROTLI_PARAM_MODE]: constants.BROTLI_MODE_TEXT, [constants.BROTLI_PARAM_QUALITY]: 5, [constants.BROTLI_PARAM_SIZE_HINT]: bytes.length },
  });
  return packed.length < bytes.length * 0.9 ? { value: new Uint8Array(packed.buffer, packed.byteOffset, packed.length), packed: true } : { value: text, packed: false };
}

function unpackText(value: unknown, packedAs: unknown): string {
  if (value instanceof Uint8Array) {
    if (packedAs !== compression) throw new Error(`unknown compression ${JSON.stringify(packedAs)}`);
    return brotliDecompressSync(value).toString('utf8');
  }
  return String(value);
}

/** A body and a header map, as stored: each as it is, or packed with its compression named beside it. */
function packMessage(headers: Record<string, string> | undefined, body: string | undefined): Item {
  const stored: Item = {};
  if (headers !== undefined) {
    const text = JSON.stringify(headers);
    const packed = packText(text);
    if (packed.packed) Object.assign(stored, { headers: packed.value, headersCompression: compression });
    else stored['headers'] = headers;
  }
  if (body !== undefined) {
    const packed = packText(body);
    stored['body'] = packed.value;
    if (packed.packed) stored['bodyCompression'] = compression;
  }
  return stored;
}

function unpackMessage(stored: Item): { headers?: Record<string, string>; body?: string } {
  const { headers, headersCompression, body, bodyCompression } = stored;
  const found: { headers?: Record<string, string>; body?: string } = {};
  if (headers !== undefined) found.headers = headers instanceof Uint8Array ? (JSON.parse(unpackText(headers, headersCompression)) as Record<string, string>) : (headers as Record<string, string>);
  if (body !== undefined && body !== null) found.body = unpackText(body, bodyCompression);
  return found;
}

function storedOutput(output: AttemptOutput | null): Item | null {
  if (!output) return null;
  const { headers, body, ...rest } = output;
  return { ...rest, ...packMessage(headers, body) };
}

function outputFrom(stored: unknown): AttemptOutput | null {
  if (!stored || typeof stored !== 'object') return null;
  const { headers: _headers, headersCompression: _hc, body: _body, bodyCompression: _bc, ...rest } = stored as Item;
  return { ...(rest as unknown as AttemptOutput), ...unpackMessage(stored as Item) };
}

function storedValue(field: string, value: unknown): unknown {
  if (instantFields.has(field)) return new Date(value as number).toISOString();
  if (field === 'output') return storedOutput(value as AttemptOutput | null);
  return value;
}

function fieldValue(field: Field, value: unknown): unknown {
  if (instantFields.has(field)) return Date.parse(String(value));
  if (field === 'output') return outputFrom(value);
  return value;
}

/** A value a condition compares a field with, as the field is stored. */
export function storedConditionValue(field: string, value: unknown): unknown {
  return instantFields.has(field) ? new Date(value as number).toISOString() : value;
}

/** The request's headers and body as stored: beside the state (the `request` map) or in an item of its own. */
function storedRequest(request: JobRequest): Item {
  // Bytes (v1's body_base64) are kept as their base64 text, named so beside it.
  return { ...packMessage(request.headers, request.body ?? undefined), ...(request.bodyEncoding ? { bodyEncoding: request.bodyEncoding } : {}) };
}

/** Absent is how a field without a value is stored: null, or an empty history, costs bytes at every write. */
const isEmpty = (value: unknown) => value === undefined || value === null || (Array.isArray(value) && value.length === 0);

/** The job's state item. */
export function jobItem(job: Job): Item {
  const item: Item = { pk: job.jobId, sk: JOB };
  for (const [field, value] of Object.entries(job)) {
    if (field === 'jobId' || isEmpty(value)) continue;
    item[storedName(field)] = storedValue(field, value);
  }
  return item;
}

/**
 * The item(s) a new job is written as, in the order to write them: the state with its request
 * beside it when both fit in a write unit, else the request's own item first, then the state.
 */
export function newJobItems(job: Job, request: JobRequest): Item[] {
  const state = jobItem(job);
  const together = { ...state, request: storedRequest(request) };
  // As the first attempt's lease rewrites it: that write must fit in the unit too.
  const leased = { ...together, [storedName('status')]: 'started', [storedName('leaseUntil')]: new Date(0).toISOString() };
  if (dynamoItemSize(together) <= writeUnitBytes && dynamoItemSize(leased) <= writeUnitBytes) return [together];
  return [{ pk: job.jobId, sk: REQUEST, ...storedRequest(request), expiresAt: job.expiresAt }, state];
}

/** The job in a state item (the request beside it, if any, stays out of it). */
export function jobFromItem(item: Item): Job {
  const job: Record<string, unknown> = { jobId: String(item['pk']), callback: null, output: null, history: [], notifyoutput: null };
  for (const [attribute, value] of Object.entries(item)) {
    const field = fieldOf.get(attribute);
    if (field !== undefined) job[field] = fieldValue(field, value);
  }
  return job as unknown as Job;
}

/** A kept attempt's item: its output's fields as the job's `output` stores them, its number, the job's TTL. */
export function attemptItem(jobId: string, attempt: Attempt, expiresAt: number): Item {
  const { attempt: n, ...output } = attempt;
  return { pk: jobId, sk: attemptSk(n), ...storedOutput(output), attempt: n, expiresAt };
}

/** The attempt in a kept attempt's item. */
export function attemptFromItem(item: Item): Attempt {
  const { pk: _pk, sk: _sk, expiresAt: _expires, attempt, ...output } = item;
  return { ...(outputFrom(output) as AttemptOutput), attempt: Number(attempt) };
}

/** The attributes an unsettled job is read by: its id, the index's sort key and what the index projects. */
export const unsettledAttributes: readonly string[] = ['pk', tables.jobs.unsettledIndex.sortKey, ...tables.jobs.unsettledIndex.projected];

/**
 * An unsettled job from its index entry, or from its item read for those attributes alone.
 * Undefined when an attribute every job has is missing: an entry of a keys-only index (as a
 * local DATA_DIR of an earlier version has it), whose job must be read for them.
 */
export function unsettledFromItem(item: Item): UnsettledJob | undefined {
  const entry: Record<string, unknown> = { jobId: String(item['pk']) };
  for (const attribute of unsettledAttributes) {
    const field = fieldOf.get(attribute);
    if (field !== undefined && item[attribute] !== undefined) entry[field] = fieldValue(field, item[attribute]);
  }
  const complete = ['created', 'status', 'notified', 'lastUpdate'].every((field) => entry[field] !== undefined);
  return complete ? (entry as unknown as UnsettledJob) : undefined;
}

/** The request in a state item (its `request` map) or in an item of its own, if it is there. */
export function requestFromItem(item: Item, job: Pick<Job, 'service' | 'methodtype'>): JobRequest | undefined {
  const stored = item['sk'] === REQUEST ? item : item['request'];
  if (!stored || typeof stored !== 'object') return undefined;
  const { headers = {}, body } = unpackMessage(stored as Item);
  const bytes = (stored as Item)['bodyEncoding'] === 'base64' ? { bodyEncoding: 'base64' as const } : {};
  return { url: job.service, method: job.methodtype, headers, body: body ?? null, ...bytes };
}

/** A change of the core's, as attributes to set and to remove. */
export function storedChanges(changes: JobChanges): { set: Item; remove: string[] } {
  const { remove = [], ...fields } = changes as JobChanges & Item;
  const set: Item = {};
  for (const [field, value] of Object.entries(fields)) {
    if (value !== undefined) set[storedName(field)] = storedValue(field, value);
  }
  // The request beside the state is never removed, not even by the write that makes the job
  // final: a replay sends it again.
  const removed: string[] = remove.filter((field) => fields[field] === undefined).map(storedName);
  return { set, remove: removed };
}
