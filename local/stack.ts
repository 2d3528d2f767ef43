/**
 * The local stack: the same Lambda handlers as AWS runs, against an embedded DynamoDB (dynalite,
 * on disk under DATA_DIR) and SQS (fauxqs, in memory), behind a local API Gateway front and SQS
 * event-source pollers. The jobs table is the source of truth: the queues do not survive a
 * restart, so whatever is unsettled at start is queued again.
 */
import { renameSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { SQSClient } from '@aws-sdk/client-sqs';
import type { Context } from 'aws-lambda';
import { awsClients, closeAwsClients } from '../lambdas/adapters/aws.ts';
import { env, functions, queues, sweep, type QueueName } from '../lib/definitions.ts';
import { demoClient, ensureClient } from './demo.ts';
import { startFront, type ApiHandler } from './front.ts';
import { invoke } from './invocations.ts';
import { lambdaContext, QueuePoller, type SqsHandler } from './poller.ts';
import { provisionQueues, provisionTables, localTableNames } from './provision.ts';
import { stackFileName, type StackFile } from './stack-file.ts';
import { startStorage } from './storage.ts';
import { upgradeStore, type UpgradeReport } from './upgrade.ts';

export interface LocalStackOptions {
  dataDir: string;
  host: string;
  port: number;
  egressAllowCidrs: string;
  /** Receive loops per queue: how far Lambda would scale each consumer out. */
  pollers?: Partial<Record<QueueName, number>>;
  onError?: (error: unknown) => void;
  /**
   * Index every job in the unsettled index from submit on (the default): the local queue lives
   * in memory, and a restart finds what it lost there. The benchmark turns it off to meter what
   * a job writes on AWS, where SQS keeps its messages.
   */
  indexEveryJob?: boolean;
}

export interface LocalStack {
  url: string;
  dataDir: string;
  recovered: { jobs: number; callbacks: number; leasesExpired: number };
  /** What was found in an older layout and rewritten at start. */
  upgraded: UpgradeReport;
  demo: { clientId: string; verifyToken: string; signingSecret: string };
  /**
   * The event source mappings' own SQS client (on AWS their receives and deletes are Lambda's,
   * not the functions'): the benchmark meters it with SDK middleware, as it does the handlers'.
   */
  eventSource: SQSClient;
  stop(): Promise<void>;
}

const defaultPollers: Record<QueueName, number> = { jobs: 4, callbacks: 2, jobsDeadLetter: 1, callbacksDeadLetter: 1 };

export async function startLocalStack(options: LocalStackOptions): Promise<LocalStack> {
  const dataDir = resolve(options.dataDir);

  const storage = await startStorage(dataDir);
  const { dynamodbEndpoint, sqsEndpoint } = storage;

  // The handlers build their clients from the environment, exactly as on Lambda.
  Object.assign(process.env, {
    AWS_REGION: process.env['AWS_REGION'] ?? 'us-east-1',
    AWS_ACCESS_KEY_ID: 'local',
    AWS_SECRET_ACCESS_KEY: 'local',
    AWS_ENDPOINT_URL_DYNAMODB: dynamodbEndpoint,
    AWS_ENDPOINT_URL_SQS: sqsEndpoint,
    POWERTOOLS_LOG_LEVEL: process.env['POWERTOOLS_LOG_LEVEL'] ?? 'WARN',
    // CloudWatch's embedded metric format means nothing on a laptop.
    POWERTOOLS_METRICS_DISABLED: process.env['POWERTOOLS_METRICS_DISABLED'] ?? 'true',
    [env.jobsTable]: localTableNames.jobs,
    [env.clientsTable]: localTableNames.clients,
    [env.egressAllowCidrs]: options.egressAllowCidrs,
    [env.indexEveryJob]: String(options.indexEveryJob ?? true),
  });
  // Provisioning's clients, and the event source's, the handlers' apart (endpoints from the environment above).
  const setup = awsClients();
  const eventSource = awsClients({ requestTimeoutMs: (Math.max(...Object.values(queues).map((queue) => queue.waitSeconds)) + 5) * 1_000 });
  await provisionTables(setup.dynamodb);
  const upgraded = await upgradeStore(setup.documents, localTableNames.jobs, dataDir);
  const made = await provisionQueues(setup.sqs);
  Object.assign(process.env, {
    [env.jobsQueueUrl]: made.jobs.url,
    [env.callbacksQueueUrl]: made.callbacks.url,
  });

  // The very modules Lambda runs, loaded once the environment is theirs.
  const [api, execute, notify, deadLetter, sweeper, wiring, sweepCore] = await Promise.all([
    import('../lambdas/api.ts'),
    import('../lambdas/execute.ts'),
    import('../lambdas/notify.ts'),
    import('../lambdas/dead-letter.ts'),
    import('../lambdas/sweeper.ts'),
    import('../lambdas/adapters/wiring.ts'),
    import('../lambdas/core/sweep.ts'),
  ]);
  const services = wiring.services();
  const demo = await ensureClient(services.clients, demoClient);
  // Nothing is in flight yet: every lease found was taken before a crash, and queues start empty.
  const recovered = await sweepCore.requeueUnsettled(services, { expireLeases: true });

  const handlers: Record<'execute' | 'notify' | 'deadLetter', SqsHandler> = { execute: execute.handler, notify: notify.handler, deadLetter: deadLetter.handler };
  const pollers = (Object.keys(queues) as QueueName[]).map((name) => {
    const spec = queues[name];
    return new QueuePoller({
      sqs: eventSource.sqs,
      queueUrl: made[name].url,
      queueArn: made[name].arn,
      functionName: spec.consumer,
      handler: handlers[spec.consumer],
      batchSize: spec.batchSize,
      waitSeconds: spec.waitSeconds,
      timeoutSeconds: functions[spec.consumer].timeoutSeconds,
      concurrency: options.pollers?.[name] ?? defaultPollers[name],
      ...(options.onError ? { onError: options.onError } : {}),
    });
  });
  for (const poller of pollers) poller.start();
  const front = await startFront(api.handler as ApiHandler, options.host, options.port, options.onError);
  // EventBridge's schedule, locally: the sweeper handler every `sweep.everyMinutes`.
  const sweeping = setInterval(() => {
    invoke('sweeper', sweeper.handler as (event: unknown, context: Context) => Promise<unknown>, {}, lambdaContext('sweeper', functions.sweeper.timeoutSeconds)).catch((error: unknown) =>
      options.onError?.(error),
    );
  }, sweep.everyMinutes * 60_000);
  sweeping.unref();

  const file: StackFile = { pid: process.pid, url: front.url, dynamodbEndpoint, sqsEndpoint, tables: localTableNames };
  const path = join(dataDir, stackFileName);
  writeFileSync(`${path}.tmp`, JSON.stringify(file, null, 2));
  renameSync(`${path}.tmp`, path);

  let stopped: Promise<void> | undefined;
  return {
    url: front.url,
    dataDir,
    recovered,
    upgraded,
    demo,
    eventSource: eventSource.sqs,
    stop: () =>
      (stopped ??= (async () => {
        clearInterval(sweeping);
        await front.close();
        await Promise.all(pollers.map((poller) => poller.stop()));
        services.http.close();
        await storage.stop();
        // After the storage: a long poll a stopped poller left in hand ends with it.
        closeAwsClients(setup);
        closeAwsClients(eventSource);
        closeAwsClients(services.aws);
      })()),
  };
}
