/**
 * What an operator may change per deployment, read once from CDK context (`cdk.json` or
 * `npx cdk deploy -c retentionDays=7`), typed, with the defaults written beside it.
 * Everything the local stack shares with AWS stays in definitions.ts; this file holds only what
 * exists on AWS alone.
 */
import type { Construct } from 'constructs';
import { RetentionDays } from 'aws-cdk-lib/aws-logs';
import { defaultRetentionDays } from './definitions.ts';

export interface Settings {
  /** JOB_RETENTION_DAYS: how long a job record is kept (DynamoDB TTL). */
  retentionDays: number;
  /** The API's default-stage throttle: a flood is answered 429 before it reaches Lambda. */
  throttle: { burstLimit: number; rateLimit: number };
  /** How long function and access logs are kept. */
  logRetention: RetentionDays;
}

/** The context keys an operator may set, e.g. `npx cdk deploy -c apiThrottleRate=50`. */
export const contextKeys = {
  retentionDays: 'retentionDays',
  throttleBurst: 'apiThrottleBurst',
  throttleRate: 'apiThrottleRate',
} as const;

const defaults = {
  throttleBurst: 200,
  throttleRate: 100,
} as const;

export function readSettings(scope: Construct): Settings {
  return {
    retentionDays: positiveInteger(scope, contextKeys.retentionDays, defaultRetentionDays),
    throttle: {
      burstLimit: positiveInteger(scope, contextKeys.throttleBurst, defaults.throttleBurst),
      rateLimit: positiveInteger(scope, contextKeys.throttleRate, defaults.throttleRate),
    },
    logRetention: RetentionDays.ONE_MONTH,
  };
}

/** Context from `-c key=value` arrives as a string, from cdk.json as a number: accept both. */
function positiveInteger(scope: Construct, key: string, fallback: number): number {
  const raw: unknown = scope.node.tryGetContext(key);
  if (raw === undefined || raw === null || raw === '') return fallback;
  const value = typeof raw === 'number' ? raw : Number(raw);
  if (!Number.isInteger(value) || value < 1) {
    throw new Error(`context ${key} must be a positive integer, got ${JSON.stringify(raw)}`);
  }
  return value;
}
