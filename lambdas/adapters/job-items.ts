/**
 * How a job lies in the jobs table, written to be read by a person as much as by the code:
 * - one item per job (`sk = "job"`), rewritten at each transition, whose attributes are the
 *   fields of `GET /status` under the names it shows them by (`status`, `attempts`,
 *   `max_attempts`, `next_attempt_at`, `output`, `notified`, ...), instants as ISO-8601 text;
 * - a field without a value (null, an empty history) is absent;
 * - the request it sends in an item of its own (`sk = "request"`: `headers`, `body`, the job's
 *   `expiresAt`), written before the job's state so that whoever finds the job finds its
 *   request, and kept as long as the job, final or not: a replay (POST /v1/jobs/{id}/replay)
 *   sends it again. Never beside the state item, however small: there it would be rewritten by,
 *   and billed at, every later write for the whole retention (with the benchmark's 1 KiB event,
 *   a 645-byte request, the state after its answer is 983 bytes, one write unit, and 1,833 with
 *   the request beside it, two, for the answer's write and for the callback's);
 * - a job that enters no index at submit (on AWS every job that runs within 15 minutes) is
 *   written as that one item, the state as submitted beside the request (859 bytes for the
 *   benchmark's job: one write unit at submit where two items cost two). Its state item is made
 *   by its first conditional write (the first attempt's lease, or a cancel), from that item,
 *   which the attempt reads anyway; the request item is never written again, and its state is
 *   the job's only until the state item is there (`hasSubmittedState`). A job that enters an
 *   index at submit (the local stack's every job, a job delayed past 15 minutes) has its state
 *   item from submit on: an index's readers find and write the state item. A state item with a
 *   `request` map beside it (jobs written before, local DATA_DIRs) is still read, its request
 *   from the map;
 * - the output of each attempt that was followed by a retry, in an item of its own
 *   (`sk = "attempt#0001"`, the number zero-padded so the items sort by it), its fields plain as
 *   the job's `output` has them, with the attempt's number and the job's `expiresAt`: a job that
 *   succeeds at once has none, and its one output is the job's;
 * - a client's jobs are listed by listing entries, items of their own under the client's
 *   partition (job-listing.ts), not by an index of the job items' `clientId` and `created`;
 * - only bodies and header maps may be kept compressed: a binary attribute, with
 *   `bodyCompression` / `headersCompression: "br"` (brotli) beside it. Short ones stay text;
 * - what the item would repeat is left out, and put back on read (each only where reading it
 *   back gives the same job, which test/unit/job-items.test.ts checks over arbitrary jobs):
 *   the settings a job left at the contract's defaults (`methodtype` POST, `max_attempts` 5,
 *   `timeout_ms` 10000, `callback_max_attempts` 5: `storedDefaults`, frozen with the layout, so
 *   an item reads the same whatever the API's defaults become; an absent one is the default);
 *   an answer's `bodyEncoding: "utf8"`, `truncated: false` and a `bodyBytes` that is the kept
 *   text's byte length; and the `history`'s last line when it is the summary of the `output`
 *   (its attempt, `started`, `durationMs`, `statusCode` / `error`), stored as its attempt number
 *   alone (`history: [1]`). Output and history are written together for that (DynamoJobStore
 *   reads the history first for a caller that writes an output alone: the core never does).
 *   Items written before, with all of these, read as they did.
 * The core sees none of this: jobs and requests come back as they went in.
 */
import { isDeepStrictEqual } from 'node:util';
import { brotliCompressSync, brotliDecompressSync, constants } from 'node:zlib';
import { tables } from '../../lib/definitions.ts';
import { summarize, type Attempt, type AttemptOutput, type AttemptSummary, type Job, type JobRequest } from '../core/job.ts';
import type { JobChanges, UnsettledJob } from '../core/ports.ts';

export const JOB = 'job';
export const REQUEST = 'request';
/** The sort key prefix of a kept attempt's item. */
export const ATTEMPT = 'attempt#';
/** The sort key of attempt `n`'s item: zero-padded, so that the partition's items sort by number. */
export const attemptSk = (n: number): string => `${ATTEMPT}${String(n).padStart(4, '0')}`;

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
  due: 'due',
  expiresAt: 'expiresAt',
  replayOf: 'replay_of',
  flowKey: 'flow_key',
  flowRate: 'flow_rate',
  flowParallelism: 'flow_parallelism',
  scheduleId: 'schedule_id',
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
  // Brotli's built-in dictionary knows JSON and HTTP words. Quality 10, measured on the bench's
  // 1 KiB JSON event: 471 bytes against quality 5's 510, for about 1.6 ms of CPU against 0.06 ms
  // (11: 473 bytes, 2.5 ms). Those 39 bytes are part of what keeps a typical job's item in one
  // write unit after its answer, a unit saved at each of its later writes; a body is packed once.
  const packed = brotliCompressSync(bytes, {
    params: { [constants.BROTLI_PARAM_MODE]: constants.BROTLI_MODE_TEXT, [constants.BROTLI_PARAM_QUALITY]: 10, [constants.BROTLI_PARAM_SIZE_HINT]: bytes.length },
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

/**
 * An answer's output (it has a `statusCode` and a body) as http.ts makes it always names its
 * body's encoding, full size and truncation. Their usual values are left out of the item and
 * put back on read: `bodyEncoding: "utf8"`, `truncated: false`, and `bodyBytes` when it is the
 * kept text's byte length. An output without a statusCode or a body (an error, a dead letter's
 * reason) is stored as it is and read as it is.
 */
const isAnswer = (output: { statusCode?: unknown; body?: unknown }) => output.statusCode !== undefined && output.statusCode !== null && output.body !== undefined && output.body !== null;
/** Whether the short form reads back as `output`: every one of the three is there to be left out. */
const hasAnswerFields = (output: AttemptOutput) => output.bodyEncoding !== undefined && output.bodyBytes !== undefined && output.truncated !== undefined;

function storedOutput(output: AttemptOutput | null): Item | null {
  if (!output) return null;
  const { headers, body, ...rest } = output;
  const stored: Item = { ...rest };
  if (isAnswer(output) && hasAnswerFields(output)) {
    if (output.bodyEncoding === 'utf8') {
      delete stored['bodyEncoding'];
      if (output.bodyBytes === Buffer.byteLength(output.body ?? '', 'utf8')) delete stored['bodyBytes'];
    }
    if (output.truncated === false) delete stored['truncated'];
  }
  return { ...stored, ...packMessage(headers, body) };
}

function outputFrom(stored: unknown): AttemptOutput | null {
  if (!stored || typeof stored !== 'object') return null;
  const { headers: _headers, headersCompression: _hc, body: _body, bodyCompression: _bc, ...rest } = stored as Item;
  const output = { ...(rest as unknown as AttemptOutput), ...unpackMessage(stored as Item) };
  if (!isAnswer(output)) return output;
  const bodyEncoding = output.bodyEncoding ?? 'utf8';
  // In the order http.ts makes them, which is the order the item had them in before.
  const { bodyBytes, truncated, error, ...before } = output;
  return {
    ...before,
    bodyEncoding,
    bodyBytes: bodyBytes ?? (bodyEncoding === 'utf8' ? Buffer.byteLength(output.body ?? '', 'utf8') : undefined),
    truncated: truncated ?? false,
    ...(error !== undefined ? { error } : {}),
  } as AttemptOutput;
}

/** Whether history line `summary` is what `output` sums up: then it is stored as its attempt number alone. */
const sumsUpOutput = (summary: AttemptSummary, output: AttemptOutput | null | undefined): boolean =>
  !!output && isDeepStrictEqual(summary, summarize(summary.attempt, output));

/** The history as stored: its last line, when it repeats the output's summary, as just its attempt number. */
function storedHistory(history: readonly AttemptSummary[], output: AttemptOutput | null | undefined): unknown[] {
  const last = history.at(-1);
  if (!last || !sumsUpOutput(last, output)) return [...history];
  return [...history.slice(0, -1), last.attempt];
}

/** The history as the job has it: a line stored as a number is the output's summary under that number. */
function historyFrom(stored: unknown, output: AttemptOutput | null): AttemptSummary[] {
  if (!Array.isArray(stored)) return [];
  return stored.map((line) => {
    if (typeof line !== 'number') return line as AttemptSummary;
    if (!output) throw new Error(`history line ${line} is stored short, and the job has no output to read it from`);
    return summarize(line, output);
  });
}

function storedValue(field: string, value: unknown, output?: AttemptOutput | null): unknown {
  if (instantFields.has(field)) return new Date(value as number).toISOString();
  if (field === 'output') return storedOutput(value as AttemptOutput | null);
  if (field === 'history') return storedHistory(value as AttemptSummary[], output);
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

/** The request's headers and body as its own item stores them (and as an older item's `request` map beside the state has them). */
function storedRequest(request: JobRequest): Item {
  // Bytes (v1's body_base64) are kept as their base64 text, named so beside it.
  return { ...packMessage(request.headers, request.body ?? undefined), ...(request.bodyEncoding ? { bodyEncoding: request.bodyEncoding } : {}) };
}

/**
 * What a job's settings are when its item has no attribute for them: the contract's defaults
 * (lib/definitions.ts `jobLimits`, the API's `POST`), which nearly every job keeps, so nearly
 * every job's item leaves them out. Frozen here, not read from jobLimits: they are part of the
 * stored layout, and an item written today must read the same whatever the API's defaults
 * become (test/unit/job-items.test.ts checks they are today's defaults). An item that has the
 * attribute (any job written before, or a job that chose another value) is read as it says.
 */
export const storedDefaults = { methodtype: 'POST', maxAttempts: 5, timeoutMs: 10_000, callbackMaxAttempts: 5 } as const satisfies Partial<Record<Field, unknown>>;
const isStoredDefault = (field: string, value: unknown) => Object.hasOwn(storedDefaults, field) && storedDefaults[field as keyof typeof storedDefaults] === value;

/** Absent is how a field without a value is stored: null, or an empty history, costs bytes at every write. */
const isEmpty = (value: unknown) => value === undefined || value === null || (Array.isArray(value) && value.length === 0);

/** The job's state item. */
export function jobItem(job: Job): Item {
  const item: Item = { pk: job.jobId, sk: JOB };
  for (const [field, value] of Object.entries(job)) {
    if (field === 'jobId' || isEmpty(value) || isStoredDefault(field, value)) continue;
    item[storedName(field)] = storedValue(field, value, job.output);
  }
  return item;
}

/** A job's request in its own item (`sk = "request"`), kept for the job's whole retention. */
export function requestItem(job: Pick<Job, 'jobId' | 'expiresAt'>, request: JobRequest): Item {
  return { pk: job.jobId, sk: REQUEST, ...storedRequest(request), expiresAt: job.expiresAt };
}

/**
 * Whether a new job enters an index at submit: the unsettled one (`sweep`: every job on the
 * local stack, whose queue forgets) or the due one (`due`: a first attempt beyond the queue's 15
 * minutes). An index's readers find, and write, the state item, so such a job has one from
 * submit on.
 */
const indexedAtSubmit = (job: Job) => job.sweep !== undefined || job.due !== undefined;

/**
 * The items a new job is written as, in the order to write them. A job that enters no index at
 * submit (on AWS, every job that runs within 15 minutes) is one item: its request's, carrying
 * the state as submitted beside the request. Its state item is made by its first conditional
 * write (the first attempt's lease, or a cancel: DynamoJobStore's `firstState`), built from that
 * item, which the attempt reads anyway: one write at submit instead of two, and the state item
 * never carries the request, which every later write would rewrite and bill. The request item's
 * state is never written again: once the state item is there, it is the job's state.
 * A job that enters an index is written as two items, the request's first, then the state.
 */
export function newJobItems(job: Job, request: JobRequest): Item[] {
  if (indexedAtSubmit(job)) return [requestItem(job, request), jobItem(job)];
  const { pk: _pk, sk: _sk, ...state } = jobItem(job);
  return [{ ...state, ...requestItem(job, request) }];
}

/** Whether a request item carries its job's state as submitted (written as one item: see newJobItems). */
export const hasSubmittedState = (item: Item | undefined): item is Item => item !== undefined && item['sk'] === REQUEST && item[storedName('status')] !== undefined;

/** The job in a state item (the request beside an older one stays out of it), short forms put back. */
export function jobFromItem(item: Item): Job {
  const job: Record<string, unknown> = { jobId: String(item['pk']), callback: null, output: null, history: [], notifyoutput: null, ...storedDefaults };
  for (const [attribute, value] of Object.entries(item)) {
    const field = fieldOf.get(attribute);
    if (field !== undefined && field !== 'history') job[field] = fieldValue(field, value);
  }
  if (item[storedName('history')] !== undefined) job['history'] = historyFrom(item[storedName('history')], job['output'] as AttemptOutput | null);
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
    if (value !== undefined) set[storedName(field)] = storedValue(field, value, fields['output'] as AttemptOutput | null);
  }
  // The request beside an older item's state is never removed, not even by the write that makes
  // the job final: a replay sends it again.
  const removed: string[] = remove.filter((field) => fields[field] === undefined).map(storedName);
  return { set, remove: removed };
}
