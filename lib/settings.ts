/**
 * What an operator may change per deployment, read once from CDK context (`cdk.json` or
 * `npx cdk deploy -c retentionDays=7`), typed, with the defaults written beside it.
 * Everything the local stack shares with AWS stays in definitions.ts; this file holds only what
 * exists on AWS alone, or what AWS lets a deployment raise past the local stack's figure.
 */
import type { Construct } from 'constructs';
import { RetentionDays } from 'aws-cdk-lib/aws-logs';
import { defaultRetentionDays, queues } from './definitions.ts';

export interface Settings {
  /** JOB_RETENTION_DAYS: how long a job record is kept (DynamoDB TTL). */
  retentionDays: number;
  /** The API's default-stage throttle: a flood is answered 429 before it reaches Lambda. */
  throttle: { burstLimit: number; rateLimit: number };
  /** How long function and access logs are kept. */
  logRetention: RetentionDays;
  /**
   * Batches in flight at most per work queue (the event source mapping's maximum concurrency,
   * 2 to 1000): the most concurrency its consumer takes from the account's pool, however long
   * the backlog behind a slow target grows. Dead-letter queues keep Lambda's minimum, 2.
   */
  maxConcurrency: { jobs: number; callbacks: number };
  /**
   * Concurrency reserved for the api function, so that queue consumers and other functions of
   * the account can never starve submissions (it is also the api's ceiling). 0: none reserved.
   */
  apiReservedConcurrency: number;
  /** Where alarm notifications are emailed (an SNS subscription the address must confirm). */
  alarmEmail: string | undefined;
  /** Active X-Ray tracing of every function, through Powertools Tracer. */
  tracing: boolean;
}

/** The context keys an operator may set, e.g. `npx cdk deploy -c apiThrottleRate=50`. */
export const contextKeys = {
  retentionDays: 'retentionDays',
  throttleBurst: 'apiThrottleBurst',
  throttleRate: 'apiThrottleRate',
  jobsMaxConcurrency: 'jobsMaxConcurrency',
  callbacksMaxConcurrency: 'callbacksMaxConcurrency',
  apiReservedConcurrency: 'apiReservedConcurrency',
  alarmEmail: 'alarmEmail',
  tracing: 'tracing',
} as const;

/**
 * Lambda keeps 100 of an account's concurrency unreserved: a reservation must leave that. An
 * account's default quota is 1,000; a new account's may start lower, and there the reservation
 * is set to 0 (README: "Deploying").
 */
export const unreservedMinimum = 100;

export const settingDefaults = {
  /** No more requests at once than the api's reservation can serve at once: past it, a clear 429 rather than Lambda's throttle (a 500). */
  throttleBurst: 100,
  throttleRate: 100,
  jobsMaxConcurrency: queues.jobs.maxConcurrency,
  callbacksMaxConcurrency: queues.callbacks.maxConcurrency,
  /**
   * The default stage's 100 requests a second, at the api's tens of milliseconds each, keep
   * under 10 invocations busy; 100 carries the whole burst arriving at once.
   */
  apiReservedConcurrency: 100,
  tracing: false,
} as const;

/** Lambda's range for an SQS event source mapping's maximum concurrency. */
export const maxConcurrencyRange = { min: 2, max: 1_000 } as const;

export function readSettings(scope: Construct): Settings {
  const email = text(scope, contextKeys.alarmEmail);
  if (email !== undefined && !/^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(email)) {
    throw new Error(`context ${contextKeys.alarmEmail} must be an email address, got ${JSON.stringify(email)}`);
  }
  return {
    retentionDays: integer(scope, contextKeys.retentionDays, defaultRetentionDays),
    throttle: {
      burstLimit: integer(scope, contextKeys.throttleBurst, settingDefaults.throttleBurst),
      rateLimit: integer(scope, contextKeys.throttleRate, settingDefaults.throttleRate),
    },
    logRetention: RetentionDays.ONE_MONTH,
    maxConcurrency: {
      jobs: integer(scope, contextKeys.jobsMaxConcurrency, settingDefaults.jobsMaxConcurrency, maxConcurrencyRange),
      callbacks: integer(scope, contextKeys.callbacksMaxConcurrency, settingDefaults.callbacksMaxConcurrency, maxConcurrencyRange),
    },
    apiReservedConcurrency: integer(scope, contextKeys.apiReservedConcurrency, settingDefaults.apiReservedConcurrency, { min: 0, max: 10_000 }),
    alarmEmail: email,
    tracing: flag(scope, contextKeys.tracing, settingDefaults.tracing),
  };
}

/** Context from `-c key=value` arrives as a string, from cdk.json as a number: accept both. */
function integer(scope: Construct, key: string, fallback: number, range: { min: number; max: number } = { min: 1, max: Number.MAX_SAFE_INTEGER }): number {
  const raw: unknown = scope.node.tryGetContext(key);
  if (raw === undefined || raw === null || raw === '') return fallback;
  const value = typeof raw === 'number' ? raw : Number(raw);
  if (!Number.isInteger(value) || value < range.min || value > range.max) {
    const rule = range.max === Number.MAX_SAFE_INTEGER ? `an integer of at least ${range.min}` : `an integer from ${range.min} to ${range.max}`;
    throw new Error(`context ${key} must be ${rule}, got ${JSON.stringify(raw)}`);
  }
  return value;
}

function text(scope: Construct, key: string): string | undefined {
  const raw: unknown = scope.node.tryGetContext(key);
  if (raw === undefined || raw === null || raw === '') return undefined;
  if (typeof raw !== 'string') throw new Error(`context ${key} must be a string, got ${JSON.stringify(raw)}`);
  return raw.trim();
}

function flag(scope: Construct, key: string, fallback: boolean): boolean {
  const raw: unknown = scope.node.tryGetContext(key);
  if (raw === undefined || raw === null || raw === '') return fallback;
  if (raw === true || raw === 'true') return true;
  if (raw === false || raw === 'false') return false;
  throw new Error(`context ${key} must be true or false, got ${JSON.stringify(raw)}`);
}
