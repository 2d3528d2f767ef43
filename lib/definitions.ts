/**
 * The one description of waas's tables, queues, functions and limits.
 *
 * Both the CDK stack (lib/waas-stack.ts) and the local stack (local/) read this file, so the
 * two cannot drift: a visibility timeout, a batch size or a key changed here changes both.
 * It imports nothing from aws-cdk-lib so the Lambda bundles and the local stack can load it.
 */

/** Limits of a submitted job: the contract's ranges, with their defaults beside them. */
export const jobLimits = {
  maxAttempts: { min: 1, max: 20, default: 5 },
  timeoutMs: { min: 100, max: 60_000, default: 10_000 },
  callbackMaxAttempts: { min: 1, max: 20, default: 5 },
  /** A callback attempt's timeout: not client-configurable. */
  callbackTimeoutMs: 10_000,
  /** POST /webhook bodies larger than this are answered 413; so is each job of a batch. */
  requestBodyBytes: 256 * 1024,
  /**
   * POST /v1/jobs/batch bodies larger than this are answered 413: Lambda takes a synchronous
   * invocation's payload up to 6 MB, and the gateway's event wraps the body (JSON text is passed
   * as it is, not base64).
   */
  batchBodyBytes: 5 * 1024 * 1024,
  urlChars: 2048,
  maxHeaders: 50,
  headerBytes: 16 * 1024,
  /** How much of a target's response body a job record keeps (the rest is counted, not kept). */
  responseBodyBytes: 64 * 1024,
  /** How much of a target's response headers a job record keeps. */
  responseHeaderBytes: 8 * 1024,
  /** How many attempts the record's history keeps (the latest ones). */
  attemptHistory: 20,
} as const;

/**
 * Flow control (v1's `flow_key`, `flow_rate`, `flow_parallelism`): the contract's ranges, and the
 * timing of the limiter that enforces them across every worker (lambdas/core/flow.ts; its state,
 * one item per client and key, is in the limits table: lambdas/adapters/flow-store.ts).
 */
export const flowLimits = {
  keyChars: { min: 1, max: 128 },
  /** Attempts a second. */
  rate: { min: 0.01, max: 1_000 },
  /** Attempts in flight. */
  parallelism: { min: 1, max: 1_000 },
} as const;

export const flowTiming = {
  /**
   * Starts are spaced (1000 + this) / rate ms apart, not 1000 / rate: what lies between a start's
   * permit and its request's arrival at the target (the lease's write, the connection, a busy
   * event loop) varies by up to this much, and a target counting arrivals in any one-second
   * window must still see no more than `flow_rate`. It costs a key 1000 / (1000 + this) of its
   * rate: 9% at 100 ms.
   */
  startJitterMs: 100,
  /**
   * A held-back job waits in its worker, in the key's line of that process, for its key to have
   * room, up to a time drawn in this range, before its message is handed back: a message can only
   * come back in whole seconds, so waits in the worker keep a busy key at its limits rather than
   * idle between waves of returning messages, and drawing each job's wait spreads the returns (a
   * crowd that came at once leaves, and comes back, spread over a second and more). Waiting costs
   * the function's time, a hand-back a message and a read: past a second or two, the hand-back
   * is cheaper.
   */
  waitInWorkerMs: { min: 500, max: 2_000 },
  /** While its key is full, the first in a key's line reads the key again after a random wait in this range (or when a job of that process lets its slot go). */
  pollMs: { min: 40, max: 120 },
  /** Read-decide-write rounds an acquire makes when other workers' writes keep winning, before it waits like a held-back job. */
  contentionTries: 4,
  /** A key's item outlives its last write by this much (TTL): idle keys vanish. */
  idleKeyMs: 24 * 60 * 60 * 1_000,
} as const;

/** Retry timing shared by service calls and callbacks. */
export const retryTiming = {
  baseDelayMs: 1_000,
  maxDelayMs: 15 * 60 * 1_000,
  /** Retry-After is honoured up to this much. */
  maxRetryAfterMs: 15 * 60 * 1_000,
} as const;

/** How long a job is kept after it was created, unless JOB_RETENTION_DAYS says otherwise. */
export const defaultRetentionDays = 30;

/** Idempotency-Key on POST /webhook is remembered this long. */
export const idempotencyWindowMs = 24 * 60 * 60 * 1_000;

/** A revoked client is refused within this bound (the credential cache lives no longer). */
export const credentialCacheMs = 5_000;

export const tables = {
  clients: {
    id: 'ClientsTable',
    partitionKey: 'clientId',
  },
  jobs: {
    id: 'JobsTable',
    /** A job is several small items under one partition: its state, its request, its kept attempts; Idempotency-Keys are items of their own. */
    partitionKey: 'pk',
    sortKey: 'sk',
    ttlAttribute: 'expiresAt',
    /**
     * A sparse index of the work that could lose its message: jobs waiting on a retry of their
     * call or callback carry their `sweep` shard until both are settled (on the local stack,
     * whose queue lives in memory, every job does, from submit on). A job that succeeds at once
     * never enters it, so it costs nothing on the way most jobs go, and the sweeper's work grows
     * with the work in flight, never with the jobs stored.
     *
     * Besides its keys it carries `projected`: exactly the attributes the sweeper decides on
     * (core/sweep.ts: settled or not, job or callback, the latest moment it was due, the leases
     * it may expire), so the sweeper reads the index alone. The cost, against the keys-only
     * index before it, whose every entry's job the sweeper then read whole (a consistent
     * BatchGetItem: a read unit or more per indexed job per run, every minute it waits):
     * - a write that changes a projected attribute of an indexed job writes its entry too (a
     *   keys-only entry only when `sweep` comes or goes). On AWS only jobs waiting on a retry
     *   are indexed; an attempt of one rewrites its entry about twice (its lease taken, its
     *   answer recorded): an entry is ~200 bytes, one write unit each;
     * - a Query is charged for the projected data it reads, summed and rounded up to 4 KB
     *   (eventually consistent, as an index is: half a read unit), not per entry: about twenty
     *   entries to a 4 KB unit.
     * A write unit costs five read units (on-demand). A retry that comes within a few sweeps
     * (most: the default five attempts are over within a minute) costs a few write units more;
     * one that waits longer than about ten sweeps costs less. What it buys at scale is the bound:
     * a sweep reads ~200 bytes per entry, never whole jobs (up to 64 KiB of answer each), and
     * makes no read of the table, so one run covers many more entries in its minute.
     *
     * CloudFormation cannot change an existing index's projection: a stack deployed with the
     * keys-only index drops it in one deploy (`-c withoutUnsettledIndex=true`, read by
     * lib/constructs/tables.ts) and adds it back in the next.
     */
    unsettledIndex: {
      name: 'unsettled',
      partitionKey: 'sweep',
      sortKey: 'created',
      projected: ['status', 'notified', 'lastUpdate', 'lease_until', 'next_attempt_at', 'notify_lease_until', 'next_notify_at'],
    },
    /**
     * A client's jobs, newest first, for GET /v1/jobs: listing entries, items of this table
     * (lambdas/adapters/job-listing.ts has their layout), never a scan, so that a page costs the
     * same whatever the table holds. One entry per submit request that creates jobs, under the
     * client's partition (`pk` = this prefix and the client id; `sk` = the jobs' `created`, then
     * the first job's id), listing that request's job ids in its order; a batch's jobs share one
     * `created`. It is written before any of their messages is sent, once, and never again.
     *
     * They replace the keys-only `client` index, which wrote an entry per job: one write unit
     * each (about $0.625 per million jobs on demand). An entry is ~150 bytes and ~37 per id more:
     * one write unit for a single submit (as the index cost), and 4 units (3.9 KB) for a batch of
     * 100, 0.04 a job. A job is never rewritten into it: its status is read from the job itself.
     *
     * What a page then costs (on-demand, eventually consistent reads): a Query or two of the
     * client's entries (a few first, then as many as the jobs they held say are needed: half a
     * read unit per 4 KB, about 100 ids or 25 single entries) and one BatchGetItem of the jobs
     * they name, half a unit per 4 KB of each job (a job is under 1 KB until an answer is
     * recorded, up to ~75 KB with a body at its limits): a page of 20 small jobs is about 11
     * read units, of 100 about 53. With `status`, the jobs of another status are read and left
     * out; a page looks at no more than `listExamined` (100) jobs whatever it finds, so it costs
     * at most one page of 100, and may hold fewer jobs than `limit`, even none, with a
     * `next_cursor` to go on from (as DynamoDB's own filtered Query pages do). None of it grows
     * with the jobs stored. bench/list.ts measures it.
     *
     * Its bound: one client's entries share one partition key, and `created` only grows, so
     * DynamoDB cannot split them for heat: one partition takes 1,000 write units a second, so
     * 1,000 single submits a second of one client, or 250 full batches (25,000 batched jobs a
     * second per client; lib/scale.ts `clientListing` reckons it for the workload's mix). A
     * throttled entry refuses its submit (503, nothing kept). Past that, the partition would be
     * sharded (`jobs#<client>#0`..`#n`, a page merging n Queries).
     */
    listing: { prefix: 'jobs#' },
    /**
     * The delayed jobs that wait in the store, by the minute they fall due: a job whose first
     * attempt is more than SQS's 15 minutes away carries `due` = "<minute>#<shard>" (e.g.
     * "2027-03-01T09:30Z#7": the minute of its `next_attempt_at`, and its id's first hex digit),
     * until the release (core/release.ts) has sent its message. Sparse: no other job carries it,
     * so a job that runs now, or within 15 minutes, never writes an entry.
     *
     * Sharded 16 ways in each minute, so that a million jobs due the same minute are sixteen
     * partitions of about 62,500 entries, each read by a Query of its own side by side, not one
     * hot partition (1,000 writes a second each: a million entries written or removed in about a
     * minute). Sorted by `next_attempt_at`, so a bucket's jobs are released in the order they are
     * due. It projects `timeout_ms` besides its keys: the release's message carries the attempt's
     * lease (as submit's does), so the first delivery takes the job in one write without a read.
     *
     * What it costs per delayed job (on demand): its entry written with the job (one write unit),
     * and removed by the release's mark (one unit on the table, one on the index); a Query reads
     * ~140 bytes per entry, half a read unit per 4 KB (about 0.02 units a job). An empty bucket's
     * Query is half a unit: 16 a minute, about $0.0009 a month. A million jobs that wait cost
     * nothing while they wait (storage aside: ~150 bytes of entry each, ~$0.04 a month).
     */
    dueIndex: {
      name: 'due',
      partitionKey: 'due',
      sortKey: 'next_attempt_at',
      projected: ['timeout_ms'],
    },
    /**
     * The sweeper's own item (not a job: no `sk` of a job, no `sweep`, so neither the index, the
     * operator's `jobs list` nor the local upgrade sees it): where the last run stopped and the
     * lease that keeps two runs apart, as plain attributes an operator can read.
     */
    sweeperState: { pk: 'sweeper', sk: 'state' },
    /**
     * The release's own item (not a job, as the sweeper's): `released_through`, the last minute
     * whose every bucket has been sent, so that a run goes on from there, however long the last
     * one was away.
     */
    releaseState: { pk: 'release', sk: 'state' },
  },
  /**
   * Schedules (POST /v1/schedules), one item each, under the API's names: `schedule_id`,
   * `clientId`, `cron`, `timezone`, `schedule_expression` (EventBridge Scheduler's), `job` (the
   * v1 job each run submits, as its JSON text: any JSON body is kept as sent, which a DynamoDB
   * map would not do for every value, and an operator reads it as it was posted), `next_run`,
   * `created`, `last_run`, `last_job_id`. A table of its own, not items of the jobs table: a
   * schedule lives until it is deleted, with no TTL, and is read through a client index of its
   * own. Runs leave nothing here: a run's key is claimed in the jobs table as an Idempotency-Key
   * is (core/schedules.ts), and its job says which schedule made it.
   */
  schedules: {
    id: 'SchedulesTable',
    partitionKey: 'schedule_id',
    /** A client's schedules, newest first: GET /v1/schedules reads them (a bounded number) without a scan. */
    clientIndex: { name: 'client', partitionKey: 'clientId', sortKey: 'created' },
  },
  /**
   * Counters that must hold across every function instance, each item a counter of its own
   * named by its key: failed authentications per source address and window now (core/auth.ts's
   * FailureLimiter; adapters/limits.ts has the layout), later other limits of the same kind.
   * Counters are short-lived: each item says, in its TTL, when it is no longer needed.
   */
  limits: {
    id: 'LimitsTable',
    partitionKey: 'key',
    ttlAttribute: 'expiresAt',
  },
} as const;

/** The unsettled index's partitions: a job's shard is the first hex digit of its id. */
export const sweepShards = '0123456789abcdef'.split('');

/**
 * The sweeper runs on this schedule and re-queues a job (or callback) that nothing has touched
 * for `idleMs` past the moment it was due: its message was lost, or its worker died.
 */
export const sweep = {
  everyMinutes: 1,
  idleMs: 5 * 60_000,
  /**
   * A run stops taking entries this long before its function's timeout, to send what it found
   * and save where it stopped (a batch of sends and one write, each a few milliseconds; this
   * leaves room for a slow one). A run cut off anyway saves nothing: its lease runs out and a
   * later run goes on from where the last saved run stopped.
   */
  stopBeforeTimeoutMs: 15_000,
} as const;

/**
 * Delayed jobs (v1's `not_before` and `delay_s`): how far ahead a job may be asked for, and how
 * its wait is carried. Up to SQS's 15 minutes its message's DelaySeconds does it (submit sends it
 * delayed, whole seconds rounded up: it never arrives early); beyond, the job waits in the due
 * index and the release sends its message once it is within the queue's reach.
 */
export const delays = {
  /** The contract's year: `delay_s` at most, and `not_before` no further ahead. */
  maxSeconds: 31_536_000,
  /** SQS's longest DelaySeconds: a job due within it is queued at submit. */
  queueMaxMs: 15 * 60_000,
  /** Minutes of due-index buckets: one a minute. */
  bucketMs: 60_000,
} as const;

/**
 * The release runs on this schedule and sends the delayed jobs of every bucket that falls due
 * within `horizonMs` (each message carrying what is left of its wait): a bucket's last job is
 * due less than `horizonMs` + a minute ahead, so within SQS's 15 minutes. A minute short of
 * them, so that a bucket the release has passed can no longer be given a job (submit puts in
 * the index only jobs more than 15 minutes ahead), with a minute of clock skew to spare.
 */
export const release = {
  everyMinutes: 1,
  horizonMs: 14 * 60_000,
  /** A run stops taking entries this long before its function's timeout (as the sweeper's). */
  stopBeforeTimeoutMs: 15_000,
  /** Buckets' shards read and sent side by side. */
  concurrency: 16,
} as const;

export interface FunctionSpec {
  /** The entry module under lambdas/. */
  entry: string;
  timeoutSeconds: number;
  memoryMb: number;
  /**
   * Environments the local stack runs it in at most, at once (each a worker thread). For a
   * queue's consumer it covers the maximum concurrency of every queue it consumes.
   */
  localConcurrency: number;
}

export type QueueName = 'jobs' | 'callbacks' | 'jobsDeadLetter' | 'callbacksDeadLetter';
export type FunctionName = 'api' | 'execute' | 'notify' | 'deadLetter' | 'sweeper' | 'release' | 'scheduleRun';

export interface QueueSpec {
  id: string;
  /** The function that consumes it. */
  consumer: FunctionName;
  batchSize: number;
  /** Long-poll wait, locally (Lambda's own poller always long-polls, 20 s, SQS's longest). */
  waitSeconds: number;
  /**
   * The event source mapping's maximum concurrency: batches of this queue in flight at most
   * (Lambda allows 2 to 1000). Locally, as many receive loops.
   */
  maxConcurrency: number;
  /** Set when this queue has a dead-letter queue. */
  deadLetter?: { queue: QueueName; maxReceiveCount: number };
}


/**
 * Lambda's own log lines per invocation (START, END, REPORT: about 330 bytes) are at INFO; at
 * WARN they are not written. They were most of what a job cost in CloudWatch Logs; duration,
 * errors and throttles stay in CloudWatch metrics. Set it to 'INFO' to have them back.
 */
export const lambdaSystemLogLevel: 'DEBUG' | 'INFO' | 'WARN' = 'WARN';

export const functions = {
  api: { entry: 'lambdas/api.ts', timeoutSeconds: 10, memoryMb: 512, localConcurrency: 8 },
  /**
   * Runs one attempt per message, a batch concurrently: up to timeoutMs.max, then the first
   * callback (callbackTimeoutMs), then the write-back.
   */
  execute: { entry: 'lambdas/execute.ts', timeoutSeconds: 90, memoryMb: 512, localConcurrency: 20 },
  /** Callback retries only (the first attempt runs in execute): small and rare. */
  notify: { entry: 'lambdas/notify.ts', timeoutSeconds: 30, memoryMb: 256, localConcurrency: 2 },
  deadLetter: { entry: 'lambdas/dead-letter.ts', timeoutSeconds: 30, memoryMb: 256, localConcurrency: 4 },
  sweeper: { entry: 'lambdas/sweeper.ts', timeoutSeconds: 60, memoryMb: 256, localConcurrency: 1 },
  /** Every minute: sends the delayed jobs that fall due within SQS's reach (core/release.ts). */
  release: { entry: 'lambdas/release.ts', timeoutSeconds: 60, memoryMb: 256, localConcurrency: 1 },
  /** One run of a schedule (EventBridge Scheduler invokes it; locally the stack's timer): a submit. */
  scheduleRun: { entry: 'lambdas/schedule-run.ts', timeoutSeconds: 10, memoryMb: 256, localConcurrency: 2 },
} as const satisfies Record<FunctionName, FunctionSpec>;

/**
 * Dead-lettering is for poison messages only: attempts are counted in the job record. A job's
 * message carries every attempt of its service call and then of its callback, and is also
 * handed back without an attempt, each time one receive more. The headroom is that arithmetic,
 * so that a job that still has attempts is never given up on (test/unit/retry.test.ts checks
 * each figure against the waits core/retry.ts makes):
 */
export const receiveHeadroom = {
  /** A first delivery before its job is written: back after 1, 2, 4, 8 and 8 s, until submitWriteWindowMs has passed. */
  earlyDeliveries: 6,
  /** Per attempt, once for a lease another worker holds and once for a deadline too near to start it. */
  perAttempt: 2,
  /**
   * Handling that throws (the store or the queue unavailable or throttled) comes back after a
   * growing wait (afterFailureMs): this many receives ride out a two-hour outage of either.
   */
  outage: 60,
  /**
   * An invocation Lambda throttles (the account's pool exhausted elsewhere) returns its batch
   * after the visibility timeout: an hour of that, for the jobs queue.
   */
  throttled: 8,
} as const;

/** The outage `receiveHeadroom.outage` is sized for. */
export const outageRiddenOutMs = 2 * 60 * 60 * 1_000;

const attemptsAtMost = jobLimits.maxAttempts.max + jobLimits.callbackMaxAttempts.max;
const maxReceiveCount =
  attemptsAtMost * (1 + receiveHeadroom.perAttempt) + receiveHeadroom.earlyDeliveries + receiveHeadroom.outage + receiveHeadroom.throttled;

export const queues = {
  jobs: {
    id: 'JobsQueue',
    consumer: 'execute',
    batchSize: 10,
    waitSeconds: 20,
    maxConcurrency: 20,
    deadLetter: { queue: 'jobsDeadLetter', maxReceiveCount },
  },
  callbacks: {
    id: 'CallbacksQueue',
    consumer: 'notify',
    batchSize: 10,
    waitSeconds: 20,
    maxConcurrency: 2,
    deadLetter: { queue: 'callbacksDeadLetter', maxReceiveCount },
  },
  jobsDeadLetter: { id: 'JobsDeadLetterQueue', consumer: 'deadLetter', batchSize: 10, waitSeconds: 20, maxConcurrency: 2 },
  callbacksDeadLetter: { id: 'CallbacksDeadLetterQueue', consumer: 'deadLetter', batchSize: 10, waitSeconds: 20, maxConcurrency: 2 },
} as const satisfies Record<QueueName, QueueSpec>;

const queueNames = Object.keys(queues) as QueueName[];
/** The queues that carry work (each with its dead-letter queue), and the dead-letter queues. */
export const workQueueNames = queueNames.filter((name) => 'deadLetter' in queues[name]);
export const deadLetterQueueNames = queueNames.filter((name) => !('deadLetter' in queues[name]));

/**
 * AWS's guidance for a queue that triggers Lambda: a visibility timeout of at least six times
 * the consumer's timeout, so a message is not handed out again while a throttled batch waits.
 */
export function visibilityTimeoutSeconds(queue: QueueName): number {
  return functions[queues[queue].consumer].timeoutSeconds * 6;
}

/** Dead-letter queues keep messages as long as SQS allows, 14 days. */
export const deadLetterRetentionDays = 14;

/**
 * The HTTP API's routes, all served by the api function. v1 is one greedy route: the function
 * routes it (core/v1.ts's `v1Routes`), so that a known path asked with another method gets v1's
 * 405 with `Allow`, and an unknown one v1's problem, not the gateway's bare 404.
 */
export const routes = [
  { method: 'POST', path: '/webhook' },
  { method: 'GET', path: '/webhook' },
  { method: 'GET', path: '/status' },
  { method: 'GET', path: '/health' },
  { method: 'ANY', path: '/v1/{proxy+}' },
  // The console (lambdas/core/console.ts): its page, and its script and style sheet under it.
  { method: 'GET', path: '/console' },
  { method: 'GET', path: '/console/{proxy+}' },
] as const;

/** Environment variable names the functions read (the stack sets them, so does the local stack). */
export const env = {
  jobsTable: 'JOBS_TABLE',
  clientsTable: 'CLIENTS_TABLE',
  limitsTable: 'LIMITS_TABLE',
  jobsQueueUrl: 'JOBS_QUEUE_URL',
  callbacksQueueUrl: 'CALLBACKS_QUEUE_URL',
  /** The dead-letter consumer hands a message whose settling threw back to its queue, soon. */
  jobsDeadLetterQueueUrl: 'JOBS_DEAD_LETTER_QUEUE_URL',
  callbacksDeadLetterQueueUrl: 'CALLBACKS_DEAD_LETTER_QUEUE_URL',
  retentionDays: 'JOB_RETENTION_DAYS',
  egressAllowCidrs: 'EGRESS_ALLOW_CIDRS',
  /** "true" where the queue loses its messages on a restart (the local stack): see SubmitDeps.indexEveryJob. */
  indexEveryJob: 'WAAS_INDEX_EVERY_JOB',
  schedulesTable: 'SCHEDULES_TABLE',
} as const;

/**
 * What the api function needs to make and delete EventBridge Scheduler schedules (AWS alone: set
 * on the api function only; where they are absent, as locally, schedules have no timers of their
 * own and the local stack's timer reads the table).
 */
export const schedulerEnv = {
  group: 'SCHEDULE_GROUP',
  /** The schedule-run function each schedule invokes, the role it invokes it with, and the runs' dead-letter queue. */
  targetArn: 'SCHEDULE_RUN_ARN',
  roleArn: 'SCHEDULER_ROLE_ARN',
  deadLetterArn: 'SCHEDULE_DEAD_LETTER_ARN',
} as const;

/**
 * EventBridge Scheduler's retries of a run it could not hand to the schedule-run function (or
 * that failed: throttled, the store unavailable): up to this many, for up to this long (its
 * bound is 24 hours, the run key's claim outlives it), then to the dead-letter queue, kept as
 * long as the other dead-letter queues.
 */
export const scheduleRuns = { maximumRetryAttempts: 20, maximumEventAgeSeconds: 6 * 60 * 60, localEverySeconds: 1 } as const;

/**
 * What the functions count, as CloudWatch metrics (Powertools Metrics, the embedded metric
 * format) in the `metricsNamespace`, with one dimension, `service`: the stack's name. The
 * dashboard and the alarms read these names; the core tells them through its Telemetry port.
 */
export const metricsNamespace = 'waas';
export const metricNames = {
  /** api: a new job stored and queued (a repeat of an Idempotency-Key is not one). */
  jobsAccepted: 'JobsAccepted',
  /** A job became final: completed, failed (an answer, attempts exhausted, or dead-lettered), or cancelled. */
  jobsCompleted: 'JobsCompleted',
  jobsFailed: 'JobsFailed',
  jobsCancelled: 'JobsCancelled',
  /** The service call of an attempt, in milliseconds (as the job record's output says). */
  attemptDuration: 'AttemptDuration',
  /** An attempt of a service call or a callback that will be tried again. */
  retriesScheduled: 'RetriesScheduled',
  callbacksDelivered: 'CallbacksDelivered',
  /** A callback attempt that did not get a 2xx; `CallbacksAbandoned` once it is given up on. */
  callbackFailures: 'CallbackFailures',
  callbacksAbandoned: 'CallbacksAbandoned',
  /** deadLetter: a message SQS gave up on, settled (its job failed, or its callback given up on). */
  deadLettersSettled: 'DeadLettersSettled',
  /** A queue message whose handling threw (it comes back soon: the store or queue failing). */
  messagesFailed: 'MessagesFailed',
  messagesReceived: 'MessagesReceived',
  /** sweeper: runs, and the work it found without a message and queued again. */
  sweeps: 'Sweeps',
  sweptJobs: 'SweptJobs',
  sweptCallbacks: 'SweptCallbacks',
  /** sweeper: a run that found another holding the lease; one that stopped short of its timeout; one that went on from such a stop. */
  sweepSkipped: 'SweepSkipped',
  sweepUnfinished: 'SweepUnfinished',
  sweepResumed: 'SweepResumed',
  /** release: delayed jobs sent to the queue from the due index; a run that stopped at its deadline with buckets left. */
  jobsReleased: 'JobsReleased',
  releaseUnfinished: 'ReleaseUnfinished',
  /** scheduleRun: a schedule's run that made its job. */
  scheduleRuns: 'ScheduleRuns',
} as const;
export type MetricName = (typeof metricNames)[keyof typeof metricNames];

/** How long an attempt's lease outlives its timeout, so a slow write-back is not taken over. */
export const leaseMarginMs = 15_000;

/**
 * How long a sweeper run holds the sweeper's lease: its function's timeout and a margin. A run
 * cannot outlive its timeout, so past this a lease left by a run that died holds nothing up.
 */
export const sweeperLeaseMs = functions.sweeper.timeoutSeconds * 1_000 + leaseMarginMs;

/**
 * Every DynamoDB and SQS call through the AWS SDK (lambdas/adapters/aws.ts): the SDK's standard
 * retry mode with this many attempts, each bounded in connecting and in answering. Bounded so
 * that a call, retries included, ends within `leaseMarginMs`: what a worker writes after its
 * attempt fits in the lease it holds and before its function's deadline.
 */
export const awsCalls = { maxAttempts: 3, connectionTimeoutMs: 1_000, requestTimeoutMs: 2_500 } as const;

/**
 * The longest one call can take, retries included: every attempt to its bounds, and the
 * standard retry mode's longest waits between them (a throttled call's: up to 1 s × 2^retry).
 */
export const awsCallWorstCaseMs =
  awsCalls.maxAttempts * (awsCalls.connectionTimeoutMs + awsCalls.requestTimeoutMs) + Array.from({ length: awsCalls.maxAttempts - 1 }, (_, retry) => 1_000 * 2 ** retry).reduce((a, b) => a + b, 0);

/**
 * Submit queues a job's message before it stores the job. A message that finds no job is
 * tried again while the API may still be writing it (its function's timeout, and a margin);
 * after that, that submit failed and the message is dropped.
 */
export const submitWriteWindowMs = functions.api.timeoutSeconds * 1_000 + leaseMarginMs;
