/**
 * The one place where the core meets its adapters: configuration read once from the
 * environment (the stack sets it on AWS, the local stack in its process), and the stores,
 * queues and HTTP client built once per process and shared by the handlers.
 */
import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import { defaultRetentionDays, env, metricsNamespace, schedulerEnv } from '../../lib/definitions.ts';
import { Authenticator, FailureLimiter } from '../core/auth.ts';
import type { SubmitDeps } from '../core/submit.ts';
import { EgressPolicy, EgressRefused, resolveChecked } from '../core/egress.ts';
import { FlowGate, FlowLimiter } from '../core/flow.ts';
import { silentTelemetry, systemClock, type Client, type ClientStore, type Clock, type Telemetry } from '../core/ports.ts';
import { awsClients } from './aws.ts';
import { DynamoDueIndex } from './due-index.ts';
import { DynamoClientStore, DynamoJobStore } from './dynamo.ts';
import { DynamoFailureCounter } from './limits.ts';
import { DynamoFlowStore } from './flow-store.ts';
import { NodeHttpClient } from './http.ts';
import { DynamoScheduleStore } from './schedules.ts';
import type { TimerTargets } from './scheduler.ts';
import { DynamoSweepStateStore } from './sweep-state.ts';
import { SqsWorkQueue } from './sqs.ts';
import { traceClients } from './tracing.ts';

export interface Config {
  jobsTable: string;
  clientsTable: string;
  limitsTable: string;
  schedulesTable: string;
  /** Where schedules get EventBridge Scheduler timers (AWS); absent locally, where the stack's timer reads the table. */
  timers?: TimerTargets;
  jobsQueueUrl: string;
  callbacksQueueUrl: string;
  retentionDays: number;
  egressAllowCidrs: string;
  /** See SubmitDeps.indexEveryJob: the local stack sets it, AWS does not. */
  indexEveryJob: boolean;
  /** The URL of the dead-letter queue a record came from (by its event source ARN), if known. */
  deadLetterQueueUrl(eventSourceArn: string | undefined): string | undefined;
}

/** A queue's ARN and its URL both end in its name. */
export function queueUrlForArn(urls: Array<string | undefined>, arn: string | undefined): string | undefined {
  const name = arn?.split(':').pop();
  return name ? urls.find((url) => url !== undefined && url.split('/').pop() === name) : undefined;
}

function required(vars: NodeJS.ProcessEnv, name: string): string {
  const value = vars[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
}

export function readConfig(vars: NodeJS.ProcessEnv = process.env): Config {
  const retention = Number(vars[env.retentionDays] ?? defaultRetentionDays);
  return {
    jobsTable: required(vars, env.jobsTable),
    clientsTable: required(vars, env.clientsTable),
    limitsTable: required(vars, env.limitsTable),
    schedulesTable: required(vars, env.schedulesTable),
    ...(vars[schedulerEnv.group]
      ? {
          timers: {
            group: required(vars, schedulerEnv.group),
            targetArn: required(vars, schedulerEnv.targetArn),
            roleArn: required(vars, schedulerEnv.roleArn),
            deadLetterArn: required(vars, schedulerEnv.deadLetterArn),
          },
        }
      : {}),
    jobsQueueUrl: required(vars, env.jobsQueueUrl),
    callbacksQueueUrl: required(vars, env.callbacksQueueUrl),
    retentionDays: Number.isFinite(retention) && retention > 0 ? retention : defaultRetentionDays,
    egressAllowCidrs: vars[env.egressAllowCidrs] ?? '',
    indexEveryJob: vars[env.indexEveryJob] === 'true',
    deadLetterQueueUrl: (arn) => queueUrlForArn([vars[env.jobsDeadLetterQueueUrl], vars[env.callbacksDeadLetterQueueUrl]], arn),
  };
}

/** The `service` of every log line and metric: the stack's name on AWS (its functions' environment), else waas. */
export const serviceName = process.env['POWERTOOLS_SERVICE_NAME'] || 'waas';

export const logger = new Logger({ serviceName });

/** Powertools Metrics that can say whether they publish (POWERTOOLS_METRICS_DISABLED, as Powertools reads it). */
export class WaasMetrics extends Metrics {
  get publishing(): boolean {
    return !this.isDisabled();
  }
}

/** CloudWatch metrics in the embedded metric format, namespace `waas`: published once per invocation. */
export const metrics = new WaasMetrics({ namespace: metricsNamespace, serviceName });

/** The core's Telemetry as these metrics; where they are not published, nothing is kept. */
export function metricsTelemetry(target: WaasMetrics = metrics): Telemetry {
  if (!target.publishing) return silentTelemetry;
  return {
    count: (metric, value = 1) => target.addMetric(metric, MetricUnit.Count, value),
    duration: (metric, ms) => target.addMetric(metric, MetricUnit.Milliseconds, ms),
  };
}

/** How long a submission waits for DNS before leaving the verdict to delivery. */
const submitLookupMs = 2_000;

/** The egress verdict at submit: a literal address or a name that resolves to a refused address. */
export function refusalAtSubmit(policy: EgressPolicy): (url: string) => Promise<string | undefined> {
  return async (url) => {
    const verdict = policy.checkUrl(url);
    if (!verdict.allowed) return verdict.reason;
    if (verdict.literal) return undefined;
    try {
      // A slow resolver must not hold a submission up: past the bound, delivery decides.
      let timer: NodeJS.Timeout | undefined;
      const bound = new Promise<void>((resolve) => (timer = setTimeout(resolve, submitLookupMs)));
      await Promise.race([resolveChecked(policy, new URL(url).hostname), bound]).finally(() => clearTimeout(timer));
    } catch (error) {
      // Only a refusal is final here; a name that does not resolve now may later (checked again then).
      if (error instanceof EgressRefused) return error.message;
    }
    return undefined;
  };
}

function build() {
  const config = readConfig();
  const clock: Clock = systemClock;
  // One SDK client per service for the process, its region, endpoint and credentials from the
  // environment: Lambda's, or the local stack's.
  const aws = awsClients();
  traceClients(aws);
  const db = aws.documents;
  const jobs = new DynamoJobStore(db, config.jobsTable);
  const clients = new DynamoClientStore(db, config.clientsTable);
  const egress = EgressPolicy.fromEnv(config.egressAllowCidrs);
  const auth = new Authenticator(clients, clock);
  return {
    config,
    clock,
    aws,
    jobs,
    // Reads go through the credential cache: a callback needs its client's signing secrets.
    clients: {
      get: (clientId: string) => auth.client(clientId),
      put: (client: Client) => clients.put(client).finally(() => auth.forget(client.clientId)),
      list: () => clients.list(),
      revoke: (clientId: string, at: string) => clients.revoke(clientId, at).finally(() => auth.forget(clientId)),
    } satisfies ClientStore,
    egress,
    queue: new SqsWorkQueue(aws.sqs, { job: config.jobsQueueUrl, callback: config.callbacksQueueUrl }),
    sweeps: new DynamoSweepStateStore(db, config.jobsTable),
    due: new DynamoDueIndex(db, config.jobsTable),
    schedules: new DynamoScheduleStore(db, config.schedulesTable),
    http: new NodeHttpClient({ policy: egress, clock }),
    auth,
    limiter: new FailureLimiter(new DynamoFailureCounter(db, config.limitsTable), {
      clock,
      // The name and message alone: the call's input holds the client id tried.
      onCounterFailed: (error, doing) =>
        logger.warn(`the failure limiter goes on without its counter (${doing} failed)`, { error: error instanceof Error ? `${error.name}: ${error.message}` : String(error) }),
    }),
    telemetry: metricsTelemetry(),
    // Flow keys' records in the limits table; one line per key in this process (core/flow.ts).
    flow: new FlowGate(new FlowLimiter(new DynamoFlowStore(db, config.limitsTable, clock), clock), { clock }),
  };
}

export type Services = ReturnType<typeof build>;

/** What a submit needs of the process's services: the api's, and each schedule run's. */
export function submitDeps(s: Services): SubmitDeps {
  return {
    jobs: s.jobs,
    queue: s.queue,
    clock: s.clock,
    retentionDays: s.config.retentionDays,
    indexEveryJob: s.config.indexEveryJob,
    refuse: refusalAtSubmit(s.egress),
    telemetry: s.telemetry,
  };
}

let built: Services | undefined;

/** The process's services, built on first use (a Lambda's cold start, or the local stack's). */
export function services(): Services {
  built ??= build();
  return built;
}
