/**
 * What the API answers, as schemas: the job record, an acceptance, a batch's results, a page of
 * the list, a job's attempts, a problem, and the seed's bodies. Defined once, here, for the
 * OpenAPI document (core/openapi.ts); the answers themselves are built by the routes (job.ts's
 * `publicRecord`, errors.ts), and test/unit/openapi.test.ts checks real answers against these.
 *
 * The routes name these by their names in `responseSchemas` (a type-only import): this module
 * is loaded with the document, not at every cold start (building these schemas costs the api
 * function's import some 15 ms of CPU, measured).
 *
 * Objects are open (z.object, not strictObject): a client must take a field it does not know
 * yet. The test holds the server to them closed, so a field the routes answer and these do not
 * name fails it.
 */
import * as z from 'zod/mini';
import { jobLimits } from '../../lib/definitions.ts';
import { problemTypePrefix } from './errors.ts';
import { jobStatuses, methods, type Notified } from './job.ts';
import { jobIdPattern } from './schemas.ts';

// A documented format, not a pattern: these schemas describe answers, they never parse a request.
const instant = (description: string) => z.string().check(z.meta({ format: 'date-time', description }));
const count = (description: string) => z.number().check(z.int(), z.gte(0), z.describe(description));

export const jobIdSchema = z.string().check(z.regex(jobIdPattern), z.meta({ format: 'uuid', description: 'A job id: a UUID (version 4).' }));

/**
 * Every status a record may show. `cancelled` is final beside completed and failed (v1's cancel);
 * the store's side adds it to job.ts's statuses, and the Set keeps it listed once either way.
 */
export const recordStatuses = [...new Set<string>([...jobStatuses, 'cancelled'])] as [string, ...string[]];

const notifiedValues = ['no', 'true', 'notification failed', 'n/a'] as const satisfies readonly Notified[];
/** Fails to compile when job.ts's Notified gains a value this list does not name. */
const everyNotified: Record<Notified, true> = { no: true, true: true, 'notification failed': true, 'n/a': true };
void everyNotified;

/** What one attempt saw (job.ts's AttemptOutput): an answer, or the error that prevented one. */
export const attemptOutputSchema = z
  .object({
    started: instant('When the attempt started.'),
    durationMs: count('How long it took, in milliseconds.'),
    statusCode: z.optional(z.number().check(z.int(), z.gte(100), z.lte(599), z.describe("The target's HTTP status code, when it answered."))),
    headers: z.optional(z.record(z.string(), z.string()).check(z.describe(`The answer's headers, up to ${jobLimits.responseHeaderBytes} bytes of them.`))),
    body: z.optional(z.string().check(z.describe(`The answer's body: its first ${jobLimits.responseBodyBytes} bytes, as UTF-8 text, or base64 when the bytes are not text (bodyEncoding).`))),
    bodyEncoding: z.optional(z.enum(['utf8', 'base64'])),
    bodyBytes: z.optional(count("The answer body's full size in bytes, counted to the end even when cut.")),
    truncated: z.optional(z.boolean().check(z.describe('True when body holds less than the whole answer.'))),
    error: z.optional(z.string().check(z.describe('Why there is no answer: "timeout", a network error ("dns: ENOTFOUND host", "ECONNREFUSED: ..."), or "egress policy: ...".'))),
  })
  .check(z.describe("One attempt's outcome: the answer (statusCode, headers, body) or the error that prevented one."));

/** One line of the record's history (job.ts's AttemptSummary): no bodies. */
export const attemptSummarySchema = z.object({
  attempt: z.number().check(z.int(), z.gte(1)),
  started: instant('When the attempt started.'),
  durationMs: count('How long it took, in milliseconds.'),
  statusCode: z.optional(z.number().check(z.int(), z.gte(100), z.lte(599))),
  error: z.optional(z.string()),
});

/** The job record, as GET /status and v1 show it (job.ts's `publicRecord`). */
export const jobRecordSchema = z
  .object({
    jobId: jobIdSchema,
    clientId: z.string(),
    created: instant('When the job was accepted.'),
    lastUpdate: instant('When the record last changed.'),
    service: z.string().check(z.meta({ format: 'uri', description: 'The URL the job calls (v1: url).' })),
    methodtype: z.enum(methods).check(z.describe('The method it calls with (v1: method).')),
    callback: z.nullable(z.string().check(z.meta({ format: 'uri' }))).check(z.describe('Where the outcome is POSTed; null: no callback.')),
    status: z
      .enum(recordStatuses)
      .check(
        z.describe(
          'accepted (stored and queued) → started (a worker holds its first attempt) → running (tried, waiting for or in a retry) → completed (the service answered 2xx), failed (a final answer, attempts exhausted, or refused by the egress policy) or cancelled.',
        ),
      ),
    attempts: count('Attempts of the service call so far.'),
    max_attempts: z.number().check(z.int(), z.gte(1)),
    timeout_ms: z.number().check(z.int(), z.gte(1)),
    next_attempt_at: z.nullable(instant('When the next attempt is due (a retry\'s, or a delayed job\'s first: not_before or delay_s); null when none is waiting.')),
    output: z.nullable(attemptOutputSchema).check(z.describe('The last attempt: null until an attempt finishes.')),
    history: z.array(attemptSummarySchema).check(z.describe(`The last ${jobLimits.attemptHistory} attempts, oldest first.`)),
    notified: z.enum(notifiedValues).check(z.describe('"no" until the callback is settled, then "true" (it answered 2xx) or "notification failed" (its attempts exhausted); "n/a" without a callback.')),
    notifyoutput: z.nullable(z.string()).check(z.describe("The callback's last status code or error.")),
    notify_attempts: count('Attempts of the callback so far.'),
    callback_max_attempts: z.number().check(z.int(), z.gte(1)),
    flow_key: z.optional(z.string().check(z.describe('The flow key its attempts are counted under (v1), within its client.'))),
    flow_rate: z.optional(z.number().check(z.describe('The flow_rate it was submitted with: attempts a second for its key.'))),
    flow_parallelism: z.optional(z.number().check(z.int(), z.describe('The flow_parallelism it was submitted with: attempts in flight for its key.'))),
    schedule_id: z.optional(z.string().check(z.meta({ format: 'uuid', description: 'The schedule whose run made this job; absent for a job submitted by hand.' }))),
    replay_of: z.optional(jobIdSchema.check(z.describe('The job this one replays (POST /v1/jobs/{job_id}/replay); absent on a job submitted.'))),
  })
  .check(z.describe("A job's record: its request's URL and method, where it stands, the last attempt's outcome and its callback's."));

/** A job taken: POST /webhook's and POST /v1/jobs's 202 (submit.ts's Accepted). */
export const acceptedSchema = z.object({
  job_id: jobIdSchema,
  created: instant('When the job was accepted.'),
  status: z.literal('accepted'),
});

/** POST /v1/jobs/{job_id}/replay's 202: a new job, with the one it repeats. */
export const replayedSchema = z.object({
  job_id: jobIdSchema,
  created: instant('When the new job was accepted.'),
  status: z.literal('accepted'),
  replay_of: jobIdSchema.check(z.describe('The job this one repeats; it is untouched.')),
});

/** GET /v1/jobs/{job_id}/request's 200 (manage.ts's PublicRequest). */
export const serviceRequestSchema = z
  .object({
    url: z.string().check(z.meta({ format: 'uri' })),
    method: z.enum(methods),
    headers: z.record(z.string(), z.string()).check(z.describe('The headers it sends: the submitted ones, Content-Type where a JSON body added it, and the Idempotency-Key waas adds (the job id) unless the client set one.')),
    body: z.nullable(z.string()).check(z.describe('The body it sends, as text (a JSON body as its JSON text); null with none, or when it is bytes (body_base64).')),
    body_base64: z.optional(z.string().check(z.describe('The body, when it was submitted as bytes (body_base64).'))),
  })
  .check(z.describe("The request a job sends, as it was taken: the record names only its URL and method."));

/** An RFC 9457 problem: every failure of v1 (errors.ts's `problemOf`). */
export const problemSchema = z
  .object({
    type: z.string().check(z.startsWith(problemTypePrefix), z.meta({ format: 'uri', description: `The problem's kind, a URN: ${problemTypePrefix}<name> (a name, not a page to fetch).`, examples: [`${problemTypePrefix}invalid-request`] })),
    title: z.string().check(z.describe("The kind's title, the same for every problem of a type.")),
    status: z.number().check(z.int(), z.gte(400), z.lte(599), z.describe('The HTTP status code.')),
    detail: z.string().check(z.describe('What went wrong here, naming the field and the rule.')),
  })
  .check(z.describe('An RFC 9457 problem detail, as application/problem+json.'));

/** One result of a batch: the job accepted, or why it was refused. */
export const batchResultSchema = z.union([acceptedSchema, z.object({ error: problemSchema })]);

export const batchResultsSchema = z.object({
  results: z.array(batchResultSchema).check(z.describe("One result per job, in the request's order: the job accepted, or {error: problem}.")),
});

export const jobPageSchema = z.object({
  jobs: z.array(jobRecordSchema).check(z.describe('Newest first.')),
  next_cursor: z.nullable(z.string()).check(z.describe('The cursor of the next page; null on the last one. Following it to the end lists each job once.')),
});

/** One attempt of a job's service call, as GET /v1/jobs/{job_id}/attempts lists it. */
export const attemptSchema = z.object({
  attempt: z.number().check(z.int(), z.gte(1), z.describe('Its number, from 1.')),
  ...attemptOutputSchema.shape,
});

export const attemptsSchema = z.object({
  attempts: z.array(attemptSchema).check(z.describe('Every attempt kept, oldest first.')),
});

/**
 * The callback's body (callback.ts's `callbackBody`): the seed's names, and the structured
 * output. Not an answer but a request waas makes: the document's `webhooks`.
 */
export const callbackSchema = z
  .object({
    jobId: jobIdSchema,
    clientId: z.string(),
    status: z.enum(['completed', 'failed']).check(z.describe('How the job ended: a callback is sent for completed and failed jobs (a cancelled one gets none).')),
    created: instant('When the job was accepted.'),
    lastUpdate: instant('When its record last changed.'),
    service: z.string().check(z.meta({ format: 'uri' })),
    methodtype: z.enum(methods),
    attempts: count('Attempts of the service call.'),
    job_output: z.nullable(z.string()).check(z.describe("The seed's one line of output: the answer's body as text, \"(N bytes of binary)\", or the error.")),
    output: z.nullable(attemptOutputSchema).check(z.describe('The last attempt, structured.')),
  })
  .check(z.describe("What the callback URL is sent once a job is completed or failed. Never the service request's headers (they may hold the client's service credentials)."));

// The seed API's bodies, word for word (errors.ts).
export const seedFailureSchema = z.object({
  status: z.literal('failed'),
  message: z.string().check(z.describe('What is wrong; for a 400, which field and the rule.')),
});
export const seedBadCredentialsSchema = z.object({ status: z.literal('bad credentials') });
export const seedJobNotFoundSchema = z.object({ status: z.literal('No job with that ID exists') });
export const seedSuccessSchema = z.object({ status: z.literal('success') });
export const healthSchema = z.object({ status: z.literal('ok') });
/** What the gateway itself answers (API Gateway, or the local stack's front in its place). */
export const gatewayMessageSchema = z.object({ message: z.string() });

/** POST /v1/schedules's 201 (core/schedules.ts's ScheduleCreated). */
export const scheduleCreatedSchema = z.object({
  schedule_id: z.string().check(z.meta({ format: 'uuid', description: "The schedule's id." })),
  next_run: instant('When its first run is due.'),
});

/** A schedule, as GET and DELETE /v1/schedules/{schedule_id} show it (schedule.ts's `publicSchedule`). */
export const scheduleRecordSchema = z
  .object({
    schedule_id: z.string().check(z.meta({ format: 'uuid' })),
    cron: z.string().check(z.describe('The five fields, as given (spaces made single).')),
    timezone: z.string().check(z.describe('The IANA time zone the cron is read in.')),
    schedule_expression: z.string().check(z.describe("EventBridge Scheduler's expression of the cron (six fields, ? in day-of-month or day-of-week, days of week 1-7 from Sunday), as AWS runs it.")),
    job: z.record(z.string(), z.unknown()).check(z.describe('The v1 job each run submits, as it was validated.')),
    next_run: z.nullable(instant('When the next run is due; null when the cron matches no later time.')),
    created: instant('When the schedule was made.'),
    last_run: z.nullable(instant('The scheduled time of the last run made; null before the first.')),
    last_job_id: z.nullable(jobIdSchema.check(z.describe('The job the last run made; null when it made none.'))),
  })
  .check(z.describe('A schedule: a cron in a time zone, and the job each of its runs submits; each job made has the schedule_id in its record.'));

export const schedulesSchema = z.object({
  schedules: z.array(scheduleRecordSchema).check(z.describe('Every schedule of the client, newest first.')),
});

/** The answers' schemas by the name the document gives them (components/schemas): what the routes' `response` names. */
export const responseSchemas = {
  Accepted: acceptedSchema,
  Replayed: replayedSchema,
  JobRecord: jobRecordSchema,
  AttemptOutput: attemptOutputSchema,
  AttemptSummary: attemptSummarySchema,
  Attempt: attemptSchema,
  Attempts: attemptsSchema,
  ServiceRequest: serviceRequestSchema,
  JobPage: jobPageSchema,
  BatchResult: batchResultSchema,
  BatchResults: batchResultsSchema,
  ScheduleCreated: scheduleCreatedSchema,
  ScheduleRecord: scheduleRecordSchema,
  Schedules: schedulesSchema,
  Callback: callbackSchema,
  Problem: problemSchema,
  SeedFailure: seedFailureSchema,
  SeedBadCredentials: seedBadCredentialsSchema,
  SeedJobNotFound: seedJobNotFoundSchema,
  SeedSuccess: seedSuccessSchema,
  Health: healthSchema,
  GatewayMessage: gatewayMessageSchema,
} as const;

export type ResponseName = keyof typeof responseSchemas;
