/**
 * How a job lies in the jobs table, laid out for the write units it costs. DynamoDB bills a
 * write one unit per started KB of the larger of the item before and after, so:
 * - the request sits beside the job's state, in the one item every transition rewrites, when
 *   both fit in one KB (most jobs: a job then costs one unit to submit, one to lease and one to
 *   settle); a larger request gets an item of its own, written once, so that a transition never
 *   rewrites it;
 * - the write that makes a job final drops the request: nothing sends it again;
 * - bodies, and an attempt's output, are kept deflated when that makes them smaller.
 * The core sees none of this: jobs and requests come back as they went in.
 */
import { deflateRawSync, inflateRawSync } from 'node:zlib';
import { finalStatuses, type AttemptOutput, type Job, type JobRequest } from '../core/job.ts';
import type { JobChanges } from '../core/ports.ts';
import { dynamoItemSize } from './item-size.ts';

export const JOB = 'job';
export const REQUEST = 'request';

/** DynamoDB's write unit. */
const writeUnitBytes = 1024;

/** Below this, deflating a text is not worth its CPU. */
const deflateFromBytes = 160;

/** The request as stored: its URL and method are the job's own `service` and `methodtype`. */
interface StoredRequest {
  headers: Record<string, string>;
  body?: string | null;
  /** The body, UTF-8 and deflated. */
  bodyZ?: Uint8Array;
  /** Items written before the request moved beside the state carry these too. */
  url?: string;
  method?: JobRequest['method'];
}

/** `text` deflated, if that is worth it. */
function deflated(text: string): Uint8Array | undefined {
  const raw = Buffer.from(text, 'utf8');
  if (raw.length < deflateFromBytes) return undefined;
  const packed = deflateRawSync(raw);
  return packed.length < raw.length * 0.9 ? packed : undefined;
}

const inflated = (bytes: Uint8Array): string => inflateRawSync(bytes).toString('utf8');

function storedRequest(request: JobRequest): StoredRequest {
  const bodyZ = request.body === null ? undefined : deflated(request.body);
  return bodyZ ? { headers: request.headers, bodyZ } : { headers: request.headers, body: request.body };
}

function readRequest(stored: StoredRequest, job: Job): JobRequest {
  const body = stored.bodyZ ? inflated(stored.bodyZ) : (stored.body ?? null);
  return { url: stored.url ?? job.service, method: stored.method ?? job.methodtype, headers: stored.headers, body };
}

/** The item(s) a new job is written as: one when its request fits beside its state in a write unit. */
export function newJobItems(job: Job, request: JobRequest): Array<Record<string, unknown>> {
  const { jobId, ...state } = job;
  const item: Record<string, unknown> = { pk: jobId, sk: JOB, ...encodeFields(state) };
  const stored = storedRequest(request);
  const together = { ...item, request: stored };
  if (dynamoItemSize(together) <= writeUnitBytes) return [together];
  return [item, { pk: jobId, sk: REQUEST, ...stored, expiresAt: job.expiresAt }];
}

/** The job in a state item (the request beside it, if any, stays out of it). */
export function jobFromItem(item: Record<string, unknown>): Job {
  const { pk, sk: _sk, request: _request, outputZ, ...fields } = item;
  const output = outputZ instanceof Uint8Array ? (JSON.parse(inflated(outputZ)) as AttemptOutput) : (fields['output'] ?? null);
  return { ...fields, jobId: String(pk), output } as unknown as Job;
}

/** The request kept beside the job's state, if it is there. */
export function requestBeside(item: Record<string, unknown>): JobRequest | undefined {
  const stored = item['request'] as StoredRequest | undefined;
  return stored ? readRequest(stored, jobFromItem(item)) : undefined;
}

/** The request from its own item. */
export function requestFromItem(item: Record<string, unknown>, job: Job): JobRequest {
  return readRequest(item as unknown as StoredRequest, job);
}

/** Output deflated as `outputZ` when that is smaller, or as it is. */
function encodeFields(fields: Record<string, unknown>): Record<string, unknown> {
  const { output, ...rest } = fields;
  if (output === undefined) return fields;
  const outputZ = output === null ? undefined : deflated(JSON.stringify(output));
  return outputZ ? { ...rest, outputZ } : { ...rest, output };
}

/** A change of the core's, as attributes to set and to remove. */
export function storedChanges(changes: JobChanges): { set: Record<string, unknown>; remove: string[] } {
  const { remove = [], ...fields } = changes;
  const defined = Object.fromEntries(Object.entries(fields).filter(([, value]) => value !== undefined));
  const set = encodeFields(defined);
  const removed: string[] = remove.filter((field) => !(field in defined));
  // The output is kept in one form or the other: setting one removes the other.
  if ('outputZ' in set) removed.push('output');
  else if ('output' in set) removed.push('outputZ');
  if (changes.status !== undefined && finalStatuses.includes(changes.status)) removed.push('request');
  return { set, remove: removed };
}
