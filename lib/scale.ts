/**
 * The scale model: per region, what bounds the jobs a second the AWS stack carries, which bound
 * binds, and the context values and quota raises that carry a wanted rate, with its cost.
 * Arithmetic only, pinned by test/unit/scale.test.ts; it synthesises nothing, so the README's
 * table can be rendered (and tested) without the stack. Its defaults are lib/settings.ts's.
 *
 * ```ts
 * const today = scaleModel();                        // default settings, default quotas
 * today.reached;                                     // { jobsPerSecond: 100, bound: 'apiStage' }
 * const plan = planFor(5_000);                       // settings and raises that carry 5,000 jobs/s
 * plan.context;                                      // { apiThrottleRate: 7500, ... }
 * scaleTable([{ title: 'defaults', model: today }, { title: '5,000 jobs/s', model: plan.model }]);
 * ```
 *
 * Every rate is jobs a second, steady, once the stack has scaled out; how long scaling out takes
 * from cold is `rampNotes`.
 */
import { countFreshMs } from '../lambdas/core/auth.ts';
import { batchLimits } from '../lambdas/core/schemas.ts';
import { credentialCacheMs, functions, jobLimits, lambdaSystemLogLevel, queues, sweepShards } from './definitions.ts';
import { contextKeys, maxConcurrencyRange, settingDefaults } from './settings.ts';
import { apiGatewayBilledRequests, estimateCost, million, prices as listPrices, readUnits, writeUnits, type CostEstimate, type JobUsage, type Prices } from '../bench/cost.ts';

// ---- inputs ------------------------------------------------------------------------------------

/**
 * What a deployment sets (CDK context), shaped as lib/settings.ts's `Settings` names them, so its
 * `readSettings` result can be passed as it is.
 */
export interface ScaleSettings {
  /** `apiThrottleRate` / `apiThrottleBurst`: the API stage's throttle. */
  throttle: { rateLimit: number; burstLimit: number };
  /** `jobsMaxConcurrency` / `callbacksMaxConcurrency`: each queue's event source maximum concurrency. */
  maxConcurrency: { jobs: number; callbacks: number };
  /** `apiReservedConcurrency`: the api function's reserved concurrency; 0, none. */
  apiReservedConcurrency: number;
}

/** The defaults lib/settings.ts gives a deployment that sets nothing. */
export const defaultSettings: ScaleSettings = {
  throttle: { rateLimit: settingDefaults.throttleRate, burstLimit: settingDefaults.throttleBurst },
  maxConcurrency: { jobs: settingDefaults.jobsMaxConcurrency, callbacks: settingDefaults.callbacksMaxConcurrency },
  apiReservedConcurrency: settingDefaults.apiReservedConcurrency,
};

/** The CDK context key of each setting the model raises (lib/settings.ts `contextKeys`). */
export const settingKeys = {
  throttleRate: contextKeys.throttleRate,
  throttleBurst: contextKeys.throttleBurst,
  jobsMaxConcurrency: contextKeys.jobsMaxConcurrency,
  callbacksMaxConcurrency: contextKeys.callbacksMaxConcurrency,
  apiReservedConcurrency: contextKeys.apiReservedConcurrency,
} as const;

/** AWS's ranges for the settings, as lib/settings.ts checks them. */
export const settingRanges = {
  /** An SQS event source mapping's MaximumConcurrency (CloudFormation "AWS::Lambda::EventSourceMapping ScalingConfig"). */
  maxConcurrency: maxConcurrencyRange,
} as const;

/**
 * An account's quotas in one region, with AWS's documented defaults (`defaultQuotas`). Each says
 * which page of AWS's documentation it was checked against, and whether it can be raised.
 */
export interface AccountQuotas {
  /**
   * API Gateway "Throttle quota per account, per Region across HTTP APIs, REST APIs, WebSocket
   * APIs, and WebSocket callback APIs": 10,000 requests a second. Adjustable (Service Quotas
   * L-8A5B8E43). Some newer regions (Cape Town, Milan, Jakarta, ...) start at 2,500.
   * Checked against "Amazon API Gateway quotas".
   */
  apiGatewayRps: number;
  /**
   * The same quota's token bucket: 5,000 requests (1,250 where the rate is 2,500). Not
   * adjustable by itself: AWS sets it from the rate. A stage's burst above it is never reached.
   * Checked against "Amazon API Gateway quotas".
   */
  apiGatewayBurst: number;
  /**
   * Lambda "Concurrent executions" per region: 1,000. Adjustable ("tens of thousands"); new
   * accounts start lower. Checked against "Lambda quotas".
   */
  lambdaConcurrency: number;
  /**
   * Reserved concurrency must leave 100 of the account's unreserved (fixed). Checked against
   * "Configuring reserved concurrency for a function".
   */
  lambdaUnreservedMinimum: number;
  /**
   * "Each instance of your execution environment can serve up to 10 requests per second"
   * (synchronous invocations): a function's request rate is at most 10 × its concurrency, the
   * account's 10 × its concurrency quota (fixed ratio). Checked against "Lambda quotas" and
   * "Understanding Lambda function scaling".
   */
  lambdaRequestsPerEnvironment: number;
  /**
   * Lambda's concurrency scaling rate: 1,000 execution environments every 10 seconds, per
   * function (fixed). A ramp, not a ceiling. Checked against "Lambda scaling behavior".
   */
  lambdaScalingPer10s: number;
  /**
   * The SQS event source for standard queues: it starts with 5 concurrent invokes and adds up to
   * 300 a minute while messages wait, up to 1,250 concurrent invokes per event source mapping
   * (the older text of the same page: "up to 300 more instances per minute", 1,000 batches at
   * most). Fixed, in the default (non-provisioned) poller mode; the mapping's maximum
   * concurrency setting (2–1,000) caps it lower. Checked against "Configuring scaling behavior
   * for SQS event source mappings".
   */
  eventSource: { initialInvokes: number; addedInvokesPerMinute: number; maxInvokes: number };
  /**
   * SQS "Messages per queue (in flight)": about 120,000 for a standard queue (received, not
   * deleted; a message whose visibility a retry extended is in flight until it is received
   * again and deleted). Adjustable by a support request. Past it a long poll returns nothing,
   * without an error. Checked against "Amazon SQS standard queue quotas".
   */
  sqsInFlight: number;
  /**
   * DynamoDB table-level throughput for an on-demand table: 40,000 read and 40,000 write request
   * units a second. Adjustable; on demand has no account-level quota. The model counts the
   * `unsettled` index's writes against it too (the provisioned rule counts a table with its
   * GSIs). Checked against "Quotas in Amazon DynamoDB" and "DynamoDB maximum throughput
   * for on-demand tables".
   */
  dynamoOnDemandTable: { readUnits: number; writeUnits: number };
  /**
   * The same quotas for a provisioned table: 40,000 RCU and 40,000 WCU per table (and each of
   * its GSIs), 80,000 of each per account, the table with its GSIs included. Adjustable.
   * Checked against "Quotas in Amazon DynamoDB".
   */
  dynamoProvisionedTable: { readUnits: number; writeUnits: number };
  dynamoProvisionedAccount: { readUnits: number; writeUnits: number };
  /**
   * One partition serves at most 3,000 read and 1,000 write units a second (fixed): the bound
   * of one partition key value, such as one sweep shard of the `unsettled` index, one client's
   * item, one client's listing entries (whose sort key only grows, so DynamoDB cannot split
   * them), or one address's item in the limits table. Checked against
   * "Understanding DynamoDB warm throughput in different scenarios".
   */
  dynamoPartition: { readUnits: number; writeUnits: number };
  /**
   * A new on-demand table (and each new GSI) sustains 4,000 writes and 12,000 reads a second at
   * once; it takes up to double its previous peak at once, and throttling can occur beyond that
   * within 30 minutes. Warm throughput raises the starting point beforehand (billed once).
   * Checked against "DynamoDB on-demand capacity mode", "Pre-warming a table for on-demand
   * capacity mode" and "Understanding DynamoDB warm throughput".
   */
  dynamoNewTable: { readUnits: number; writeUnits: number; doublingMinutes: number };
}

export const defaultQuotas: AccountQuotas = {
  apiGatewayRps: 10_000,
  apiGatewayBurst: 5_000,
  lambdaConcurrency: 1_000,
  lambdaUnreservedMinimum: 100,
  lambdaRequestsPerEnvironment: 10,
  lambdaScalingPer10s: 1_000,
  eventSource: { initialInvokes: 5, addedInvokesPerMinute: 300, maxInvokes: 1_250 },
  sqsInFlight: 120_000,
  dynamoOnDemandTable: { readUnits: 40_000, writeUnits: 40_000 },
  dynamoProvisionedTable: { readUnits: 40_000, writeUnits: 40_000 },
  dynamoProvisionedAccount: { readUnits: 80_000, writeUnits: 80_000 },
  dynamoPartition: { readUnits: 3_000, writeUnits: 1_000 },
  dynamoNewTable: { readUnits: 12_000, writeUnits: 4_000, doublingMinutes: 30 },
};

/** The jobs the stack is asked to carry. */
export interface Workload {
  /** How long the target service takes to answer. */
  serviceMs: number;
  /** Share of jobs with a callback (0–1). */
  callbackFraction: number;
  /** How long the callback receiver takes to answer (beyond what `StackCosts.executeOverheadMs` holds). */
  callbackMs: number;
  /** Attempts beyond the first per job, service calls and callbacks alike (0.05: one in twenty jobs retries once). */
  retriesPerJob: number;
  /** How long a retry waits, on average, its message invisible (in flight) meanwhile. */
  retryWaitSeconds: number;
  /** The request's `data` and the answer's body, each. */
  bodyBytes: number;
  /** What brotli leaves of a body as stored (the bench's order event: about half; random bytes: 1). */
  bodyCompression: number;
  /** Messages per execute batch (of at most 10): about 6 under the bench's heavy load. */
  messagesPerBatch: number;
  /**
   * Jobs per submit request: 1 for POST /webhook or POST /v1/jobs, up to 100 for POST
   * /v1/jobs/batch, whose request is one API Gateway request, one api invocation and one
   * SendMessageBatch per ten jobs.
   */
  jobsPerSubmit: number;
  /** GET /status (or other API) requests per job besides its submit. */
  statusRequestsPerJob: number;
  /** Share of callbacks the sweeper or a dead letter hands to the notify function. */
  handedOverFraction: number;
  /** Client addresses the requests come from, evenly (the failure limiter keeps an item per address). */
  sourceAddresses: number;
  /** Clients the jobs are submitted by, evenly (each client's listing entries are a partition of their own). */
  clients: number;
}

/** The bench's job (bench/README.md): a 100 ms service, 1 KiB order events both ways, every job called back. */
export const benchWorkload: Workload = {
  serviceMs: 100,
  callbackFraction: 1,
  callbackMs: 0,
  retriesPerJob: 0,
  retryWaitSeconds: 0,
  bodyBytes: 1024,
  bodyCompression: 0.5,
  messagesPerBatch: 6,
  jobsPerSubmit: 1,
  statusRequestsPerJob: 0,
  handedOverFraction: 0,
  sourceAddresses: 1,
  clients: 1,
};

/**
 * The workload the scale model is stated for: the bench's job, of which one in twenty retries
 * once after a minute, and one callback in a hundred reaches notify.
 */
export const defaultWorkload: Workload = { ...benchWorkload, retriesPerJob: 0.05, retryWaitSeconds: 60, handedOverFraction: 0.01 };

/** The same jobs submitted in batches of 100 (POST /v1/jobs/batch at its largest). */
export const batchedWorkload: Workload = { ...defaultWorkload, jobsPerSubmit: batchLimits.max };

/**
 * What the stack itself takes per job, from its measured figures (README "Performance and
 * cost", bench/README.md): they reproduce the README's $0.49 of Lambda and 6 write units per job
 * (measured before GET /v1/jobs's listing entries, whose share of a unit at submit comes on top).
 */
export interface StackCosts {
  /**
   * The api function's duration per submit (the README's light-load submit: 15.7 ms). With
   * `executeOverheadMs` it gives the README's Lambda figure: (16 + 135 / 6) ms × 0.5 GB per job.
   * A batch is taken to cost as much per job: no batch has been measured. It is likely less (a
   * batch's puts run 25 at a time, its messages go ten to a request), and it matters little:
   * 16 ms × 0.5 GB is $0.11 a million jobs.
   */
  apiMs: number;
  /**
   * What an execute batch takes beyond its slowest service call and callback: the lease, the
   * answer's write, the callback's, the SDK. The batch's messages run at once, so a batch lasts
   * serviceMs + callbackMs + this.
   */
  executeOverheadMs: number;
  /** A notify batch beyond its callback. */
  notifyOverheadMs: number;
  /**
   * The job item once it holds its output, without the body: with the bench's 1 KiB event answer
   * (about 512 B stored) it is 983 B, one write unit (job-items.ts leaves out what it repeats).
   */
  jobStateBytes: number;
  /** The job item as submitted (its request is an item of its own): 272 B with the bench's job. */
  submitStateBytes: number;
  /** The request's own item without the body: keys, URL, method, headers, TTL (645 B with a 1 KiB event). */
  requestOverheadBytes: number;
  /**
   * A kept attempt's item (lambdas/adapters/job-items.ts `attemptItem`) without the body: its
   * keys, the output's fields as the job's `output` has them (the bench's answer keeps three
   * headers), its number and the job's TTL. 280 B, by lambdas/adapters/item-size.ts.
   */
  attemptItemBytes: number;
  /** API request bytes beyond the body (JSON fields, credentials). */
  apiRequestOverheadBytes: number;
  /** Read units per job on the jobs and clients tables (credential-cache misses, re-reads): 0.1 measured. */
  readUnitsPerJob: number;
  /**
   * Read units of one read of the limits table: the failure limiter's eventually consistent
   * GetItem of its source address's item (lambdas/adapters/limits.ts), half a unit. Each api
   * environment reads an address's item at most once per `countFreshMs` (lambdas/core/auth.ts).
   */
  limiterReadUnits: number;
}

export const stackCosts: StackCosts = {
  apiMs: 16,
  executeOverheadMs: 35,
  notifyOverheadMs: 35,
  jobStateBytes: 470,
  submitStateBytes: 272,
  requestOverheadBytes: 133,
  attemptItemBytes: 280,
  apiRequestOverheadBytes: 300,
  readUnitsPerJob: 0.1,
  limiterReadUnits: 0.5,
};

/** DynamoDB keeps one write unit per started KiB; a request beside the job must leave it in one. */
const writeUnitBytes = 1024;
/**
 * A listing entry (lib/definitions.ts `tables.jobs.listing`, lambdas/adapters/job-listing.ts):
 * one per submit request, its keys (`jobs#` and a 14-digit client id; the ISO `created` and the
 * first job's id), `clientId`, `created`, `expiresAt` and the list of its job ids, with their
 * names: 159 bytes and 37 per job id (196 for a single submit, one write unit; 3,859 for a
 * batch of 100, four), as lambdas/adapters/item-size.ts reckons them.
 */
const listingEntryBytes = (jobs: number) => 159 + 37 * jobs;
/** SendMessageBatch takes ten entries at most (lambdas/adapters/sqs.ts): a batch's messages go ten to a request. */
const sendBatchEntries = 10;
/** The dead-letter consumers (2 each, Lambda's minimum) and the sweeper (one run a minute). */
const backgroundConcurrency = queues.jobsDeadLetter.maxConcurrency + queues.callbacksDeadLetter.maxConcurrency + 1;
/** AWS prices by the month of 730 hours. */
export const hoursPerMonth = 730;

// ---- per-job figures ---------------------------------------------------------------------------

/** What one job takes, derived from the workload and the stack's figures. */
export interface JobProfile {
  /** API Gateway requests (and api invocations) per job: its share of a submit, and its status requests. */
  apiRequests: number;
  /** Requests that send the job's message: one SendMessage, or a SendMessageBatch's share (one per ten jobs of a batch). */
  sends: number;
  /** Deliveries of the job's message to execute (the first and each retry). */
  deliveries: number;
  /** An execute batch's duration, seconds. */
  batchSeconds: number;
  notifyBatchSeconds: number;
  /**
   * Write units per job, by write: the job's own (submit, lease, answer, callback, a retry's
   * lease and answer), the kept attempts' puts (`keep`), the unsettled index's entries, and its
   * share of its submit request's listing entry (`listing`).
   */
  writeUnits: { submit: number; lease: number; answer: number; callback: number; retry: number; keep: number; unsettledIndex: number; listing: number; total: number };
  /** Read units on the jobs and clients tables. */
  readUnits: number;
  /** Read units on the limits table. */
  limiterReads: number;
  /** Writes to the `unsettled` index per job: each write of a job while it waits on a retry, from the one that puts its shard to the one that settles it. */
  indexWrites: number;
  /** Write units of listing entries per job: its submit request's entry, once, shared by the request's jobs. */
  listingWrites: number;
  /** Seconds the job's message is in flight: while a batch runs it, and while a retry waits. */
  inFlightSeconds: number;
  /** Concurrency a job a second keeps busy: api, execute, notify. */
  concurrency: { api: number; execute: number; notify: number };
  /** Lambda invocations per job. */
  invocations: { api: number; execute: number; notify: number };
}

export function jobProfile(workload: Workload = defaultWorkload, stack: StackCosts = stackCosts): JobProfile {
  const stored = workload.bodyBytes * workload.bodyCompression;
  const request = stack.requestOverheadBytes + stored;
  // The request is kept to the end for a replay (POST /v1/jobs/{id}/replay), so it is always an
  // item of its own (lambdas/adapters/job-items.ts): beside the state, every later write would
  // carry and bill it. On AWS a job is submitted as that one item, with its state as submitted
  // beside the request; its first attempt's lease puts the state item (a write of its size).
  const submitted = stack.submitStateBytes;
  const answered = stack.jobStateBytes + stored;
  // A write costs the larger of the item before and after it.
  const submit = writeUnits(request + submitted);
  const lease = writeUnits(submitted);
  const answer = writeUnits(Math.max(submitted, answered));
  const callback = workload.callbackFraction * writeUnits(answered);
  // A retry's lease and answer find the earlier answer, and the request beside it, in the item.
  const retry = workload.retriesPerJob * 2 * writeUnits(answered);
  // An attempt followed by a retry is first put as an item of its own (`attempt#NNNN`, its
  // output's fields), before the write that records it: one PutItem per retry, sized by an
  // answer's output as the job's `output` is. Only service calls keep theirs (core/deliver.ts),
  // but the workload counts callback retries among its retries: where callbacks retry too, this
  // is an upper bound.
  const keep = workload.retriesPerJob * writeUnits(stack.attemptItemBytes + stored);
  // The `unsettled` index carries the attributes the sweeper decides on (INCLUDE), so each write
  // of an indexed job writes it: the answer that schedules the retry (the job enters), the
  // retry's lease, its answer, and the callback's outcome that settles it (the job leaves).
  const indexWrites = workload.retriesPerJob * 4;
  // One listing entry per submit request, written once, before its messages, and never again:
  // a batch's jobs share it (one entry of 100 ids is 4 units: 0.04 a job; a single submit's, 1).
  const listingWrites = writeUnits(listingEntryBytes(workload.jobsPerSubmit)) / workload.jobsPerSubmit;
  const deliveries = 1 + workload.retriesPerJob;
  // Each delivery's take reads the job's two items in one consistent Query: the first finds the
  // request item alone (the submitted state in it), a retry the state item with its answer too.
  const requestReads = readUnits(request + submitted, true) + workload.retriesPerJob * readUnits(request + submitted + answered, true);
  const batchSeconds = (workload.serviceMs + workload.callbackFraction * workload.callbackMs + stack.executeOverheadMs) / 1000;
  const notifyBatchSeconds = (workload.callbackMs + stack.notifyOverheadMs) / 1000;
  const handedOver = workload.callbackFraction * workload.handedOverFraction;
  const perSubmit = workload.jobsPerSubmit;
  if (!(Number.isInteger(perSubmit) && perSubmit >= batchLimits.min && perSubmit <= batchLimits.max)) {
    throw new RangeError(`jobsPerSubmit must be a whole number of ${batchLimits.min}–${batchLimits.max} (POST /v1/jobs/batch), got ${perSubmit}`);
  }
  // A batch is one request, one invocation, for all its jobs; a status request is one each.
  const apiRequests = 1 / perSubmit + workload.statusRequestsPerJob;
  // The api's time per job: its submit's (per job of a batch too: see `StackCosts.apiMs`) and each status request's.
  const apiSeconds = (1 + workload.statusRequestsPerJob) * (stack.apiMs / 1000);
  // Environments the api keeps per job a second: its time, or Lambda's 10 requests a second each.
  const apiEnvironmentsPerJob = Math.max(apiSeconds, apiRequests / defaultQuotas.lambdaRequestsPerEnvironment);
  const batch = queues.jobs.batchSize;
  const perBatch = Math.min(workload.messagesPerBatch, batch);
  const callbacksPerBatch = Math.min(workload.messagesPerBatch, queues.callbacks.batchSize);
  return {
    apiRequests,
    // Ten jobs' messages (about 100 bytes each) are one 64 KiB chunk: one billed request.
    sends: Math.ceil(perSubmit / sendBatchEntries) / perSubmit,
    deliveries,
    batchSeconds,
    notifyBatchSeconds,
    writeUnits: { submit, lease, answer, callback, retry, keep, unsettledIndex: indexWrites, listing: listingWrites, total: submit + lease + answer + callback + retry + keep + indexWrites + listingWrites },
    readUnits: stack.readUnitsPerJob + requestReads,
    // An environment reads an address's counts once per countFreshMs at most, not once a request.
    limiterReads: stack.limiterReadUnits * Math.min(apiRequests, apiEnvironmentsPerJob * (1000 / countFreshMs)),
    indexWrites,
    listingWrites,
    inFlightSeconds: deliveries * batchSeconds + workload.retriesPerJob * workload.retryWaitSeconds,
    concurrency: {
      api: apiSeconds,
      execute: (deliveries * batchSeconds) / perBatch,
      notify: (handedOver * notifyBatchSeconds) / callbacksPerBatch,
    },
    invocations: { api: apiRequests, execute: deliveries / perBatch, notify: handedOver / callbacksPerBatch },
  };
}

// ---- bounds ------------------------------------------------------------------------------------

export type BoundId =
  | 'apiStage'
  | 'apiAccount'
  | 'apiFunction'
  | 'execute'
  | 'notify'
  | 'lambdaConcurrency'
  | 'lambdaRequests'
  | 'dynamoTable'
  | 'unsettledIndex'
  | 'clientListing'
  | 'clientItem'
  | 'limiter'
  | 'sqsInFlight';

export interface Bound {
  id: BoundId;
  /** What bounds, as the README's table names it. */
  name: string;
  /** How the figure is made, in words. */
  rule: string;
  /** Jobs a second it allows (Infinity: nothing of it is used). */
  jobsPerSecond: number;
  /** What raises it: a context value, a quota, or nothing (a fixed limit). */
  raisedBy: string;
}

export interface ScaleModel {
  settings: ScaleSettings;
  quotas: AccountQuotas;
  workload: Workload;
  profile: JobProfile;
  bounds: Bound[];
  /** The least of the bounds: what the stack carries, steady. */
  reached: { jobsPerSecond: number; bound: BoundId };
  /** Settings AWS would refuse, or that strand capacity (empty when the deployment is sound). */
  issues: string[];
}

export interface ModelOptions {
  settings?: ScaleSettings;
  quotas?: AccountQuotas;
  workload?: Workload;
  stack?: StackCosts;
}

const fmt = (n: number): string => (Number.isFinite(n) ? Math.floor(n).toLocaleString('en-US') : 'no bound');
const ms = (seconds: number): string => `${(seconds * 1000).toLocaleString('en-US', { maximumFractionDigits: 1 })} ms`;
const num = (n: number, digits = 2): string => n.toLocaleString('en-US', { maximumFractionDigits: digits });

/** Each bound on jobs a second, for a deployment's settings, an account's quotas and a workload. */
export function scaleModel(options: ModelOptions = {}): ScaleModel {
  const settings = options.settings ?? defaultSettings;
  const quotas = options.quotas ?? defaultQuotas;
  const workload = options.workload ?? defaultWorkload;
  const stack = options.stack ?? stackCosts;
  const profile = jobProfile(workload, stack);
  const issues: string[] = [];
  const perEnvironment = quotas.lambdaRequestsPerEnvironment;
  const batch = Math.min(workload.messagesPerBatch, queues.jobs.batchSize);
  const callbacksBatch = Math.min(workload.messagesPerBatch, queues.callbacks.batchSize);
  const reserved = settings.apiReservedConcurrency;
  const pool = quotas.lambdaConcurrency - reserved;

  for (const [queue, value] of Object.entries(settings.maxConcurrency)) {
    if (value < settingRanges.maxConcurrency.min || value > settingRanges.maxConcurrency.max) {
      issues.push(`${queue} maximum concurrency ${value} is outside Lambda's ${settingRanges.maxConcurrency.min}–${settingRanges.maxConcurrency.max}`);
    }
  }
  if (reserved > 0 && pool < quotas.lambdaUnreservedMinimum) {
    issues.push(`apiReservedConcurrency ${reserved} leaves ${pool} of ${quotas.lambdaConcurrency} unreserved; Lambda keeps ${quotas.lambdaUnreservedMinimum} and refuses the deployment`);
  }
  const consumersAtMost = settings.maxConcurrency.jobs + settings.maxConcurrency.callbacks + backgroundConcurrency;
  if (consumersAtMost > pool) {
    issues.push(`the queue consumers may take ${consumersAtMost} concurrency, more than the ${pool} left unreserved`);
  }
  if (reserved > 0 && reserved < settings.throttle.burstLimit) {
    issues.push(`apiReservedConcurrency ${reserved} is below apiThrottleBurst ${settings.throttle.burstLimit}: a burst the stage lets through can meet the api's throttle, which API Gateway answers 500 (synth warns)`);
  }
  const batchBytes = workload.jobsPerSubmit * (workload.bodyBytes + stack.apiRequestOverheadBytes);
  if (workload.jobsPerSubmit > 1 && batchBytes > jobLimits.batchBodyBytes) {
    issues.push(`a batch of ${workload.jobsPerSubmit} jobs of ${fmt(workload.bodyBytes)} B is about ${fmt(batchBytes)} B, above POST /v1/jobs/batch's ${fmt(jobLimits.batchBodyBytes)}: it is refused (413)`);
  }
  if (settings.throttle.burstLimit > quotas.apiGatewayBurst) {
    issues.push(`apiThrottleBurst ${settings.throttle.burstLimit} is above the account's burst of ${quotas.apiGatewayBurst}: the account's bucket empties first`);
  }

  // The api function: its reservation, or else the account's pool it shares.
  const apiConcurrency = reserved > 0 ? reserved : pool;
  const apiFunction = Math.min(apiConcurrency / profile.concurrency.api, (apiConcurrency * perEnvironment) / profile.apiRequests);
  // execute: batches in flight × messages a batch ÷ a batch's time, each environment at most 10 a second.
  const executeBatches = Math.min(settings.maxConcurrency.jobs, quotas.eventSource.maxInvokes);
  const execute = (executeBatches * Math.min(1 / profile.batchSeconds, perEnvironment) * batch) / profile.deliveries;
  const notifyBatches = Math.min(settings.maxConcurrency.callbacks, quotas.eventSource.maxInvokes);
  const callbacksPerSecond = notifyBatches * Math.min(1 / profile.notifyBatchSeconds, perEnvironment) * callbacksBatch;
  const handedOver = workload.callbackFraction * workload.handedOverFraction;
  // The unreserved pool carries every function without a reservation (and the api when it has none).
  const unreservedPerJob = profile.concurrency.execute + profile.concurrency.notify + (reserved > 0 ? 0 : profile.concurrency.api);
  // A reservation that leaves less than Lambda's minimum unreserved is refused: nothing deploys.
  const refused = reserved > 0 && pool < quotas.lambdaUnreservedMinimum;
  const lambdaConcurrency = refused ? 0 : Math.max(0, pool - backgroundConcurrency) / unreservedPerJob;
  const invocationsPerJob = profile.invocations.api + profile.invocations.execute + profile.invocations.notify;
  const lambdaRequests = (quotas.lambdaConcurrency * perEnvironment) / invocationsPerJob;
  const dynamoTable = Math.min(quotas.dynamoOnDemandTable.writeUnits / profile.writeUnits.total, quotas.dynamoOnDemandTable.readUnits / profile.readUnits);
  const unsettledIndex = Math.min(sweepShards.length * quotas.dynamoPartition.writeUnits, quotas.dynamoOnDemandTable.writeUnits) / profile.indexWrites;
  // All of one client's listing entries share its partition key, and their sort key (`created`
  // first) only grows, so DynamoDB cannot split the partition for heat: one client's submits are
  // bound by one partition's writes, the clients' together by as many partitions.
  const clientListing = Math.min(quotas.dynamoPartition.writeUnits * workload.clients, quotas.dynamoOnDemandTable.writeUnits) / profile.listingWrites;
  // One client's item, read (strongly consistent, 1 unit) by each api and execute environment once per cache period.
  const readsPerEnvironment = 1000 / credentialCacheMs;
  const clientItem = quotas.dynamoPartition.readUnits / (readsPerEnvironment * (profile.concurrency.api + profile.concurrency.execute));
  // The failure limiter reads its source address's item once a second per api environment: one item per address.
  const limiterReads = Math.min(quotas.dynamoPartition.readUnits * workload.sourceAddresses, quotas.dynamoOnDemandTable.readUnits);
  const limiter = limiterReads / profile.limiterReads;

  const bounds: Bound[] = [
    { id: 'apiStage', name: 'API stage throttle', rule: `${fmt(settings.throttle.rateLimit)} requests/s ÷ ${num(profile.apiRequests)} per job`, jobsPerSecond: settings.throttle.rateLimit / profile.apiRequests, raisedBy: settingKeys.throttleRate },
    { id: 'apiAccount', name: 'API Gateway account throttle', rule: `${fmt(quotas.apiGatewayRps)} requests/s ÷ ${num(profile.apiRequests)} per job`, jobsPerSecond: quotas.apiGatewayRps / profile.apiRequests, raisedBy: 'quota: API Gateway throttle per account, per region' },
    {
      id: 'apiFunction',
      name: reserved > 0 ? 'api function, reserved concurrency' : 'api function, unreserved',
      rule: `min(${fmt(apiConcurrency)} ÷ ${ms(profile.concurrency.api)}, ${perEnvironment} requests/s × ${fmt(apiConcurrency)})`,
      jobsPerSecond: apiFunction,
      raisedBy: reserved > 0 ? settingKeys.apiReservedConcurrency : 'quota: Lambda concurrent executions',
    },
    { id: 'execute', name: 'execute, jobs event source', rule: `${fmt(executeBatches)} batches × ${num(batch)} messages ÷ ${ms(profile.batchSeconds)} ÷ ${num(profile.deliveries)} deliveries per job`, jobsPerSecond: execute, raisedBy: settingKeys.jobsMaxConcurrency },
    { id: 'notify', name: 'notify, callbacks event source', rule: `${fmt(notifyBatches)} batches × ${num(callbacksBatch)} ÷ ${ms(profile.notifyBatchSeconds)} ÷ ${num(handedOver * 100)}% of callbacks handed over`, jobsPerSecond: callbacksPerSecond / handedOver, raisedBy: settingKeys.callbacksMaxConcurrency },
    {
      id: 'lambdaConcurrency',
      name: 'Lambda concurrency, unreserved pool',
      rule: `(${fmt(quotas.lambdaConcurrency)} − ${fmt(reserved)} reserved − ${backgroundConcurrency} background) ÷ ${num(unreservedPerJob, 4)} per job/s`,
      jobsPerSecond: lambdaConcurrency,
      raisedBy: 'quota: Lambda concurrent executions',
    },
    { id: 'lambdaRequests', name: 'Lambda requests, account', rule: `${perEnvironment} × ${fmt(quotas.lambdaConcurrency)} invocations/s ÷ ${num(invocationsPerJob, 3)} per job`, jobsPerSecond: lambdaRequests, raisedBy: 'quota: Lambda concurrent executions' },
    { id: 'dynamoTable', name: 'DynamoDB jobs table, on demand', rule: `${fmt(quotas.dynamoOnDemandTable.writeUnits)} WRU/s ÷ ${num(profile.writeUnits.total)} WRU per job, its indexes' included`, jobsPerSecond: dynamoTable, raisedBy: 'quota: DynamoDB table-level write throughput' },
    { id: 'unsettledIndex', name: 'DynamoDB `unsettled` index', rule: `${sweepShards.length} shards × ${fmt(quotas.dynamoPartition.writeUnits)} WCU ÷ ${num(profile.indexWrites)} index writes per job`, jobsPerSecond: unsettledIndex, raisedBy: 'fixed (per partition)' },
    {
      id: 'clientListing',
      name: "DynamoDB one client's submits, its listing entries",
      rule: `min(${fmt(quotas.dynamoPartition.writeUnits)} WCU × ${fmt(workload.clients)} ${workload.clients === 1 ? 'client' : 'clients'}, ${fmt(quotas.dynamoOnDemandTable.writeUnits)} WRU/s) ÷ ${num(profile.listingWrites)} listing write per job (a partition per client, never split)`,
      jobsPerSecond: clientListing,
      raisedBy: 'fixed (per partition): more clients',
    },
    { id: 'clientItem', name: "DynamoDB one client's item", rule: `${fmt(quotas.dynamoPartition.readUnits)} RCU ÷ (${num(readsPerEnvironment)} reads/s × ${num(profile.concurrency.api + profile.concurrency.execute, 4)} environments per job/s)`, jobsPerSecond: clientItem, raisedBy: 'fixed (per partition)' },
    {
      id: 'limiter',
      name: 'DynamoDB failure limiter, an item per address',
      rule: `min(${fmt(quotas.dynamoPartition.readUnits)} RCU × ${fmt(workload.sourceAddresses)} ${workload.sourceAddresses === 1 ? 'address' : 'addresses'}, ${fmt(quotas.dynamoOnDemandTable.readUnits)} RRU/s) ÷ ${num(profile.limiterReads, 3)} RRU per job (a read per api environment a second)`,
      jobsPerSecond: limiter,
      raisedBy: 'fixed (per partition): more client addresses',
    },
    { id: 'sqsInFlight', name: 'SQS jobs queue in flight', rule: `${fmt(quotas.sqsInFlight)} ÷ ${num(profile.inFlightSeconds)} s in flight per job`, jobsPerSecond: quotas.sqsInFlight / profile.inFlightSeconds, raisedBy: 'quota: SQS in-flight messages (support request)' },
  ];
  const least = bounds.reduce((min, bound) => (bound.jobsPerSecond < min.jobsPerSecond ? bound : min));
  return { settings, quotas, workload, profile, bounds, reached: { jobsPerSecond: least.jobsPerSecond, bound: least.id }, issues };
}

// ---- cost --------------------------------------------------------------------------------------

/** One job's usage, as bench/cost.ts prices it: the same lines the bench's meter produces. */
export function jobUsage(workload: Workload = defaultWorkload, stack: StackCosts = stackCosts, table: Prices = listPrices): JobUsage {
  const p = jobProfile(workload, stack);
  const execute = functions.execute;
  const notify = functions.notify;
  const callbackMessages = workload.callbackFraction * workload.handedOverFraction;
  const invocations = p.invocations.api + p.invocations.execute + p.invocations.notify;
  const platformBytes = lambdaSystemLogLevel === 'WARN' ? 0 : table.logVolume.lambdaPlatformBytesPerInvocation;
  return {
    dynamodb: [
      { item: 'PutItem jobs (submit)', calls: 1, readUnits: 0, writeUnits: p.writeUnits.submit },
      { item: 'UpdateItem jobs (lease)', calls: 1, readUnits: 0, writeUnits: p.writeUnits.lease },
      { item: 'UpdateItem jobs (answer)', calls: 1, readUnits: 0, writeUnits: p.writeUnits.answer },
      { item: 'UpdateItem jobs (callback)', calls: workload.callbackFraction, readUnits: 0, writeUnits: p.writeUnits.callback },
      { item: 'UpdateItem jobs (retries: lease and answer)', calls: 2 * workload.retriesPerJob, readUnits: 0, writeUnits: p.writeUnits.retry },
      { item: 'PutItem jobs (kept attempts)', calls: workload.retriesPerJob, readUnits: 0, writeUnits: p.writeUnits.keep },
      { item: 'unsettled index writes', calls: p.indexWrites, readUnits: 0, writeUnits: p.indexWrites },
      { item: 'PutItem jobs (listing entry, submit)', calls: 1 / workload.jobsPerSubmit, readUnits: 0, writeUnits: p.listingWrites },
      { item: 'GetItem (clients, requests)', calls: p.readUnits, readUnits: p.readUnits, writeUnits: 0 },
      { item: 'GetItem limits (the failure limiter)', calls: p.limiterReads, readUnits: p.limiterReads, writeUnits: 0 },
    ],
    sqs: [
      { item: workload.jobsPerSubmit === 1 ? 'SendMessage jobs' : 'SendMessageBatch jobs (ten to a request)', calls: p.sends, billedRequests: p.sends },
      { item: 'ReceiveMessage jobs [event source]', calls: p.invocations.execute, billedRequests: p.invocations.execute },
      { item: 'DeleteMessageBatch jobs [event source]', calls: p.invocations.execute, billedRequests: p.invocations.execute },
      { item: 'ChangeMessageVisibility jobs (retries)', calls: workload.retriesPerJob, billedRequests: workload.retriesPerJob },
      { item: 'callbacks queue (handed over)', calls: callbackMessages + 2 * p.invocations.notify, billedRequests: callbackMessages + 2 * p.invocations.notify },
    ],
    lambda: [
      { fn: 'api', invocations: p.invocations.api, billedMs: p.concurrency.api * 1000, memoryMb: functions.api.memoryMb },
      { fn: 'execute', invocations: p.invocations.execute, billedMs: p.invocations.execute * p.batchSeconds * 1000, memoryMb: execute.memoryMb },
      { fn: 'notify', invocations: p.invocations.notify, billedMs: p.invocations.notify * p.notifyBatchSeconds * 1000, memoryMb: notify.memoryMb },
    ],
    // A submit is metered by its payload, a batch's by all its jobs' (512 KB to a billed request); a status request (a GET) as one.
    apiGateway: {
      requests: p.apiRequests,
      billedRequests: apiGatewayBilledRequests(workload.jobsPerSubmit * (workload.bodyBytes + stack.apiRequestOverheadBytes)) / workload.jobsPerSubmit + workload.statusRequestsPerJob,
    },
    logs: { bytes: p.apiRequests * table.logVolume.apiAccessLogBytesPerRequest + invocations * platformBytes },
  };
}

export interface ScaleCost {
  jobsPerSecond: number;
  /** The jobs priced (how many a submit carries among them). */
  workload: Workload;
  onDemand: CostEstimate;
  /** DynamoDB provisioned, used at 70%. */
  provisioned: CostEstimate;
  /** USD a month (730 hours) at `jobsPerSecond`. */
  perMonth: { onDemand: number; provisioned: number };
}

/** The cost per million jobs and per month at a steady rate, priced with bench/prices.json. */
export function scaleCost(jobsPerSecond: number, workload: Workload = defaultWorkload, stack: StackCosts = stackCosts, table: Prices = listPrices): ScaleCost {
  const usage = jobUsage(workload, stack, table);
  const onDemand = estimateCost(usage, table, { dynamo: 'onDemand' });
  const provisioned = estimateCost(usage, table, { dynamo: 'provisioned', utilisation: 0.7 });
  const millionsPerMonth = (jobsPerSecond * 3600 * hoursPerMonth) / million;
  return { jobsPerSecond, workload, onDemand, provisioned, perMonth: { onDemand: onDemand.total * millionsPerMonth, provisioned: provisioned.total * millionsPerMonth } };
}

// ---- the plan for a wanted rate ----------------------------------------------------------------

export interface QuotaRaise {
  quota: string;
  from: number;
  to: number;
  why: string;
  /** True when the wanted rate itself needs it; false when only the headroom does. */
  atWanted: boolean;
}

export interface ScalePlan {
  wanted: number;
  /** The plan sizes every bound for wanted × headroom. */
  headroom: number;
  settings: ScaleSettings;
  /** The same settings as CDK context values. */
  context: Record<(typeof settingKeys)[keyof typeof settingKeys], number>;
  /** `npx cdk deploy` with those values. */
  deployCommand: string;
  /** Quotas to raise before the rate arrives (on-demand DynamoDB). */
  quotaRaises: QuotaRaise[];
  /** What the traffic itself must be like (the model at the plan assumes it). */
  requirements: string[];
  /** What provisioned DynamoDB at 70% would need instead: the table's own capacity, and each index's. */
  provisioned: { writeCapacityUnits: number; readCapacityUnits: number; indexWriteCapacityUnits: { unsettled: number }; quotaRaises: QuotaRaise[] };
  /** The jobs table's warm throughput to set beforehand, or else the ramp in `rampNotes`. */
  warmThroughput: { writeUnitsPerSecond: number; readUnitsPerSecond: number };
  rampNotes: string[];
  /** The model at the planned settings and the raised quotas. */
  model: ScaleModel;
  /** False when context values and quota raises alone cannot carry the rate (see `model.issues`). */
  feasible: boolean;
  cost: ScaleCost;
}

export interface PlanOptions {
  workload?: Workload;
  stack?: StackCosts;
  quotas?: AccountQuotas;
  /** Spare capacity on every bound: a burst, slower targets, a wave of retries (default 1.5). */
  headroom?: number;
}

const roundUp = (value: number, step: number): number => Math.ceil(value / step - 1e-9) * step;

/** The context values and quota raises that carry `wanted` jobs a second, and what it costs. */
export function planFor(wanted: number, options: PlanOptions = {}): ScalePlan {
  if (!(wanted > 0)) throw new RangeError(`the wanted rate must be positive, got ${wanted}`);
  const workload = options.workload ?? defaultWorkload;
  const stack = options.stack ?? stackCosts;
  const current = options.quotas ?? defaultQuotas;
  const headroom = options.headroom ?? 1.5;
  if (!(headroom >= 1)) throw new RangeError(`headroom must be at least 1, got ${headroom}`);
  const target = wanted * headroom;
  const p = jobProfile(workload, stack);
  const perEnvironment = current.lambdaRequestsPerEnvironment;

  // The failure limiter's item per address, and each client's listing entries, are
  // partitions of their own: the traffic must be spread over enough of them.
  const requirements: string[] = [];
  let planned: Workload = workload;
  const addresses = Math.ceil((target * p.limiterReads) / current.dynamoPartition.readUnits);
  if (addresses > workload.sourceAddresses) {
    planned = { ...planned, sourceAddresses: addresses };
    requirements.push(
      `requests from at least ${addresses} client addresses: each api environment reads its address's failure counts once a second, and one item serves ${fmt(current.dynamoPartition.readUnits)} read units a second`,
    );
  }
  const clientsFor = (rate: number) => Math.ceil((rate * p.listingWrites) / current.dynamoPartition.writeUnits);
  const clients = clientsFor(target);
  if (clients > workload.clients) {
    planned = { ...planned, clients };
    requirements.push(
      `jobs from at least ${clients} clients, evenly (${clientsFor(wanted)} without the headroom): one client's listing entries share a partition whose sort key only grows, which DynamoDB cannot split, so one client submits at most ${fmt(current.dynamoPartition.writeUnits / p.listingWrites)} jobs a second; no context value or quota raises it`,
    );
  }

  // Never below the defaults: a plan raises what a deployment gets, it does not take from it.
  // The api: its reservation covers both its concurrency and its requests (10 a second per environment).
  const reservationFor = (rate: number) => Math.max(defaultSettings.apiReservedConcurrency, roundUp(rate * Math.max(p.concurrency.api, p.apiRequests / perEnvironment), 10));
  const apiReservedConcurrency = reservationFor(target);
  // The front door: the stage's rate; its burst no more than the reservation serves at once (as
  // the defaults have it: past it a clear 429, not Lambda's throttle), nor than the account's bucket.
  const rateLimit = Math.max(defaultSettings.throttle.rateLimit, roundUp(target * p.apiRequests, 100));
  const burstLimit = Math.max(defaultSettings.throttle.burstLimit, Math.min(apiReservedConcurrency, current.apiGatewayBurst));
  // Batches in flight, rounded up to 10 (to 2 for callbacks) within Lambda's range.
  const batchesFor = (need: number, step: number, floor: number) => Math.max(floor, Math.min(roundUp(need, step), Math.max(need, settingRanges.maxConcurrency.max)));
  const jobsNeed = target * eventSourceShare(p, perEnvironment).jobs;
  const callbacksNeed = target * eventSourceShare(p, perEnvironment).callbacks;
  const settings: ScaleSettings = {
    throttle: { rateLimit, burstLimit },
    maxConcurrency: {
      jobs: Math.min(batchesFor(jobsNeed, 10, defaultSettings.maxConcurrency.jobs), settingRanges.maxConcurrency.max),
      callbacks: Math.min(batchesFor(callbacksNeed, 2, defaultSettings.maxConcurrency.callbacks), settingRanges.maxConcurrency.max),
    },
    apiReservedConcurrency,
  };

  const raises: QuotaRaise[] = [];
  const quotas: AccountQuotas = structuredClone(current);
  /** Raises `quota` to what `need(target)` takes, rounded up to `step`, if that is more than it is. */
  const raise = (quota: string, from: number, need: (rate: number) => number, step: number, why: (amount: string) => string, apply: (to: number) => void) => {
    const to = roundUp(need(target), step);
    if (to > from) {
      raises.push({ quota, from, to, why: why(fmt(need(target))), atWanted: need(wanted) > from });
      apply(to);
    }
  };
  raise('API Gateway throttle per account, per region (requests/s)', current.apiGatewayRps, (rate) => rate * p.apiRequests, 1_000, (n) => `${n} requests/s`, (to) => (quotas.apiGatewayRps = to));
  const unreservedNeed = Math.max(current.lambdaUnreservedMinimum, settings.maxConcurrency.jobs + settings.maxConcurrency.callbacks + backgroundConcurrency);
  const invocationsPerJob = p.invocations.api + p.invocations.execute + p.invocations.notify;
  raise(
    'Lambda concurrent executions',
    current.lambdaConcurrency,
    (rate) => Math.max(reservationFor(rate) + unreservedNeed, (rate * invocationsPerJob) / perEnvironment),
    100,
    () => `${fmt(apiReservedConcurrency)} reserved for api + ${fmt(unreservedNeed)} unreserved for the queue consumers, and ${fmt((target * invocationsPerJob) / perEnvironment)} for ${perEnvironment} requests/s each`,
    (to) => (quotas.lambdaConcurrency = to),
  );
  const tableWritesAt = (rate: number) => rate * p.writeUnits.total;
  const tableReadsAt = (rate: number) => rate * p.readUnits;
  raise('DynamoDB table-level write throughput (on demand, WRU/s)', current.dynamoOnDemandTable.writeUnits, tableWritesAt, 5_000, (n) => `${n} WRU/s`, (to) => (quotas.dynamoOnDemandTable.writeUnits = to));
  raise('DynamoDB table-level read throughput (on demand, RRU/s)', current.dynamoOnDemandTable.readUnits, (rate) => Math.max(tableReadsAt(rate), rate * p.limiterReads), 5_000, (n) => `${n} RRU/s on the jobs or the limits table`, (to) => (quotas.dynamoOnDemandTable.readUnits = to));
  raise('SQS in-flight messages (jobs queue)', current.sqsInFlight, (rate) => rate * p.inFlightSeconds, 10_000, (n) => `${n} messages in flight`, (to) => (quotas.sqsInFlight = to));
  const tableWrites = tableWritesAt(target);
  const tableReads = tableReadsAt(target);

  // Provisioned at 70%: capacity for the wanted rate (the utilisation is its headroom); the table
  // (its listing entries among its writes) and its unsettled index are provisioned, and bounded,
  // each on its own (the table-level quota holds for each), and together in the account's.
  const wcu = Math.ceil((wanted * (p.writeUnits.total - p.indexWrites)) / 0.7);
  const rcu = Math.ceil(tableReadsAt(wanted) / 0.7);
  const indexWcu = { unsettled: Math.ceil((wanted * p.indexWrites) / 0.7) };
  const allWcu = wcu + indexWcu.unsettled;
  const largestWcu = Math.max(wcu, indexWcu.unsettled);
  const provisionedRaises: QuotaRaise[] = [];
  if (largestWcu > current.dynamoProvisionedTable.writeUnits) {
    const which = largestWcu === wcu ? 'the table' : 'the unsettled index';
    provisionedRaises.push({ quota: 'DynamoDB table-level write throughput (provisioned, WCU)', from: current.dynamoProvisionedTable.writeUnits, to: roundUp(largestWcu, 5_000), why: `${fmt(largestWcu)} WCU at 70% for ${which}`, atWanted: true });
  }
  if (allWcu > current.dynamoProvisionedAccount.writeUnits) {
    provisionedRaises.push({ quota: 'DynamoDB account-level write throughput (provisioned, WCU)', from: current.dynamoProvisionedAccount.writeUnits, to: roundUp(allWcu, 10_000), why: `${fmt(allWcu)} WCU with the indexes`, atWanted: true });
  }

  const model = scaleModel({ settings, quotas, workload: planned, stack });
  for (const [key, need] of [[settingKeys.jobsMaxConcurrency, jobsNeed], [settingKeys.callbacksMaxConcurrency, callbacksNeed]] as const) {
    if (need > settingRanges.maxConcurrency.max) {
      model.issues.push(`${key} would need ${fmt(Math.ceil(need))}, above Lambda's ${settingRanges.maxConcurrency.max}: the batches' time or size must change, not a context value`);
    }
  }
  const feasible = model.issues.length === 0 && model.reached.jobsPerSecond >= wanted;

  const warmWrites = roundUp(tableWrites, 1_000);
  const context = {
    [settingKeys.throttleRate]: settings.throttle.rateLimit,
    [settingKeys.throttleBurst]: settings.throttle.burstLimit,
    [settingKeys.jobsMaxConcurrency]: settings.maxConcurrency.jobs,
    [settingKeys.callbacksMaxConcurrency]: settings.maxConcurrency.callbacks,
    [settingKeys.apiReservedConcurrency]: settings.apiReservedConcurrency,
  } as ScalePlan['context'];
  return {
    wanted,
    headroom,
    settings,
    context,
    deployCommand: `npx cdk deploy ${Object.entries(context).map(([key, value]) => `-c ${key}=${value}`).join(' ')}`,
    quotaRaises: raises,
    requirements,
    provisioned: { writeCapacityUnits: wcu, readCapacityUnits: rcu, indexWriteCapacityUnits: indexWcu, quotaRaises: provisionedRaises },
    warmThroughput: { writeUnitsPerSecond: warmWrites, readUnitsPerSecond: Math.max(current.dynamoNewTable.readUnits, roundUp(tableReads, 1_000)) },
    rampNotes: rampNotes(wanted, p, current),
    model,
    feasible,
    cost: scaleCost(wanted, workload, stack),
  };
}

/** Batches in flight each job a second takes on each event source (each environment runs at most 10 a second). */
function eventSourceShare(p: JobProfile, perEnvironment: number): { jobs: number; callbacks: number } {
  return { jobs: Math.max(p.concurrency.execute, p.invocations.execute / perEnvironment), callbacks: Math.max(p.concurrency.notify, p.invocations.notify / perEnvironment) };
}

/**
 * The most jobs a second `planFor` can carry with context values and quota raises alone: past
 * it an event source would need more than Lambda's 1,000 batches in flight, with the headroom.
 */
export function contextCeiling(options: PlanOptions = {}): number {
  const p = jobProfile(options.workload ?? defaultWorkload, options.stack ?? stackCosts);
  const share = eventSourceShare(p, (options.quotas ?? defaultQuotas).lambdaRequestsPerEnvironment);
  return settingRanges.maxConcurrency.max / ((options.headroom ?? 1.5) * Math.max(share.jobs, share.callbacks));
}

/** How long each part takes to scale out from cold to `wanted` jobs a second. */
export function rampNotes(wanted: number, profile: JobProfile, quotas: AccountQuotas = defaultQuotas): string[] {
  const batches = wanted * profile.concurrency.execute;
  const esmMinutes = Math.max(0, Math.ceil((batches - quotas.eventSource.initialInvokes) / quotas.eventSource.addedInvokesPerMinute));
  const apiEnvironments = wanted * Math.max(profile.concurrency.api, profile.apiRequests / quotas.lambdaRequestsPerEnvironment);
  const apiSeconds = Math.ceil(apiEnvironments / quotas.lambdaScalingPer10s) * 10;
  const writes = wanted * profile.writeUnits.total;
  const doublings = Math.max(0, Math.ceil(Math.log2(writes / quotas.dynamoNewTable.writeUnits)));
  return [
    `execute: ${fmt(batches)} batches in flight; the event source starts at ${quotas.eventSource.initialInvokes} and adds ${quotas.eventSource.addedInvokesPerMinute} a minute: ${esmMinutes === 0 ? 'at once' : `about ${esmMinutes} min`}`,
    `api: ${fmt(apiEnvironments)} environments; Lambda adds ${fmt(quotas.lambdaScalingPer10s)} every 10 s per function: within ${apiSeconds} s`,
    `jobs table: ${fmt(writes)} WRU/s; a new on-demand table takes ${fmt(quotas.dynamoNewTable.writeUnits)} at once and doubles at most every ${quotas.dynamoNewTable.doublingMinutes} min: ` +
      (doublings === 0 ? 'at once' : `${doublings} doublings, at least ${doublings * quotas.dynamoNewTable.doublingMinutes} min of rising traffic, unless its warm throughput is raised first`),
  ];
}

// ---- the README's tables -----------------------------------------------------------------------

/** The bounds of one or more models side by side, as a markdown table; the least of each column in bold. */
export function scaleTable(columns: ReadonlyArray<{ title: string; model: ScaleModel }>): string {
  const first = columns[0];
  if (!first) throw new Error('scaleTable needs at least one model');
  const header = ['bound', 'raised by', ...columns.map((column) => `jobs/s, ${column.title}`)];
  const rows = first.model.bounds.map((bound) => [
    bound.name,
    bound.raisedBy.startsWith('quota: ') || bound.raisedBy.startsWith('fixed') ? bound.raisedBy : `\`${bound.raisedBy}\``,
    ...columns.map(({ model }) => {
      const own = model.bounds.find((b) => b.id === bound.id);
      if (!own) throw new Error(`bound ${bound.id} is missing from a model`);
      return own.id === model.reached.bound ? `**${fmt(own.jobsPerSecond)}**` : fmt(own.jobsPerSecond);
    }),
  ]);
  rows.push(['**reached** (the least)', '', ...columns.map(({ model }) => `**${fmt(model.reached.jobsPerSecond)}**`)]);
  return markdown(header, rows);
}

/** The settings of each model side by side. */
export function settingsTable(columns: ReadonlyArray<{ title: string; settings: ScaleSettings }>): string {
  const value = (settings: ScaleSettings): number[] => [settings.throttle.rateLimit, settings.throttle.burstLimit, settings.maxConcurrency.jobs, settings.maxConcurrency.callbacks, settings.apiReservedConcurrency];
  const keys = [settingKeys.throttleRate, settingKeys.throttleBurst, settingKeys.jobsMaxConcurrency, settingKeys.callbacksMaxConcurrency, settingKeys.apiReservedConcurrency];
  return markdown(['context value', ...columns.map((column) => column.title)], keys.map((key, i) => [`\`${key}\``, ...columns.map((column) => fmt(value(column.settings)[i] ?? 0))]));
}

/**
 * The cost at a rate, by service: per million jobs and per month, on demand and provisioned at
 * 70%; with `batched` (the same jobs submitted otherwise), its cost per million on demand beside.
 */
export function costTable(cost: ScaleCost, batched?: ScaleCost): string {
  const services = Object.keys(cost.onDemand.byService) as Array<keyof CostEstimate['byService']>;
  const usd = (n: number, digits = 2) => `$${n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits })}`;
  const month = (perMillion: number) => usd((perMillion * cost.jobsPerSecond * 3600 * hoursPerMonth) / million, 0);
  const submits = (workload: Workload) => (workload.jobsPerSubmit === 1 ? 'single submits' : `batches of ${workload.jobsPerSubmit}`);
  const rows = services.map((service) => [
    service,
    usd(cost.onDemand.byService[service]),
    month(cost.onDemand.byService[service]),
    usd(cost.provisioned.byService[service]),
    month(cost.provisioned.byService[service]),
    ...(batched ? [usd(batched.onDemand.byService[service])] : []),
  ]);
  rows.push([
    '**total**',
    `**${usd(cost.onDemand.total)}**`,
    `**${usd(cost.perMonth.onDemand, 0)}**`,
    `**${usd(cost.provisioned.total)}**`,
    `**${usd(cost.perMonth.provisioned, 0)}**`,
    ...(batched ? [`**${usd(batched.onDemand.total)}**`] : []),
  ]);
  const header = ['service', 'per million, on demand', `a month at ${fmt(cost.jobsPerSecond)} jobs/s`, 'per million, provisioned 70%', 'a month, provisioned 70%'];
  return markdown(batched ? [...header, `per million, on demand, ${submits(batched.workload)}`] : header, rows);
}

function markdown(header: readonly string[], rows: ReadonlyArray<readonly string[]>): string {
  const line = (cells: readonly string[]) => `| ${cells.join(' | ')} |`;
  return [line(header), line(header.map(() => '---')), ...rows.map(line)].join('\n');
}
