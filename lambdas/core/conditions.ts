/**
 * A store's conditional write, judged and applied to a job in memory: what DynamoDB's
 * ConditionExpression and UpdateExpression (adapters/dynamo.ts `updateParts`) do to a job's item,
 * said of the Job itself. The DynamoDB adapter judges so the first write of a job whose state is
 * still the one it was submitted with (its state item is made by that write, a put, whose only
 * condition is that no state item is there yet); the in-memory store of the tests judges every
 * write so.
 */
import type { Job } from './job.ts';
import type { JobChanges, JobCondition } from './ports.ts';

/** The fields that hold an instant: kept to the millisecond (ISO-8601 text in the table), compared so. */
export const instantFields: ReadonlySet<string> = new Set<keyof Job>(['nextAttemptAt', 'leaseUntil', 'notifyLeaseUntil', 'nextNotifyAt']);

/** An instant as ISO-8601 text keeps it: to the millisecond; one that is no instant throws a RangeError. */
export const instant = (ms: unknown): number => Date.parse(new Date(ms as number).toISOString());

/** Whether `condition` holds for `job`, as the conditional write's expression judges its item. */
export function conditionHolds(job: Job, condition: JobCondition): boolean {
  const fields = job as unknown as Record<string, unknown>;
  for (const [field, value] of Object.entries(condition.expect ?? {})) {
    if (value === undefined ? fields[field] !== undefined : fields[field] !== (instantFields.has(field) ? instant(value) : value)) return false;
  }
  if (condition.statusIn && !condition.statusIn.includes(job.status)) return false;
  if (condition.leaseFree) {
    const until = job[condition.leaseFree.lease];
    if (until !== undefined && until > instant(condition.leaseFree.now)) return false;
  }
  if (condition.dueBy !== undefined && job.nextAttemptAt !== undefined && job.nextAttemptAt > instant(condition.dueBy)) return false;
  return true;
}

/**
 * `job` with `changes` made: each field given a value set (a copy of it, instants to the
 * millisecond), each field of `remove` not also set taken away, as the UpdateExpression does.
 */
export function withChanges(job: Job, changes: JobChanges): Job {
  const next = structuredClone(job) as unknown as Record<string, unknown>;
  for (const [field, value] of Object.entries(changes)) {
    if (field !== 'remove' && value !== undefined) next[field] = instantFields.has(field) ? instant(value) : structuredClone(value);
  }
  for (const field of changes.remove ?? []) if (changes[field] === undefined) delete next[field];
  return next as unknown as Job;
}
