/**
 * The local stack: the same Lambda handlers as AWS runs, each function in execution
 * environments of its own (worker threads, local/runtime.ts), against an embedded DynamoDB
 * (dynalite, on disk under DATA_DIR) and SQS (fauxqs, in memory) in a storage process, behind a
 * local API Gateway front and SQS event-source pollers. The jobs table is the source of truth:
 * the queues do not survive a restart, so whatever is unsettled at start is queued again; and
 * should the storage process die, it is started again on the same endpoints and the queues
 * refilled from the table, while `/health` and the API answer 503.
 */
import { renameSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { SQSClient } from '@aws-sdk/client-sqs';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2, SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { buildConsole } from '../console/build.ts';
import { awsClients, closeAwsClients } from '../lambdas/adapters/aws.ts';
import { consoleDirEnv } from '../lambdas/core/console-assets.ts';
import { env, functions, queues, release, scheduleRuns, sweep, type FunctionName, type QueueName } from '../lib/definitions.ts';
import { ensureDemoClient, type DemoClient, type DemoClientMode } from './demo.ts';
import { faultsEnvName, faultsFromEnv, type FaultSpec } from './faults.ts';
import { startFront } from './front.ts';
import { QueuePoller } from './poller.ts';
import { provisionQueues, provisionTables, localTableNames, type LocalQueue } from './provision.ts';
import { LocalFunction } from './runtime.ts';
import { stackFileName, type StackFile } from './stack-file.ts';
import { startStorage, type Storage } from './storage.ts';
import { upgradeStore, type UpgradeReport } from './upgrade.ts';

export interface LocalStackOptions {
  dataDir: string;
  host: string;
  port: number;
  egressAllowCidrs: string;
  onError?: (error: unknown) => void;
  /** Whether the seed's demo client is made (default `on`; see local/demo.ts). */
  demoClient?: DemoClientMode;
  /** The storage process died and could not be started again: the stack cannot go on. */
  onFatal?: (error: Error) => void;
  /**
   * Index every job in the unsettled index from submit on (the default): the local queue lives
   * in memory, and a restart finds what it lost there. The benchmark turns it off to meter what
   * a job writes on AWS, where SQS keeps its messages.
   */
  indexEveryJob?: boolean;
  /**
   * Modules every execution environment imports before its handler, as NODE_OPTIONS=--import
   * would on Lambda (the benchmark meters the handlers' SDK clients with one).
   */
  preload?: readonly string[];
}

export interface LocalStack {
  url: string;
  dataDir: string;
  recovered: { jobs: number; callbacks: number; leasesExpired: number };
  /** What was found in an older layout and rewritten at start. */
  upgraded: UpgradeReport;
  /** The fault mode's settings (WAAS_FAULTS), when it is on. */
  faults?: FaultSpec;
  /** What became of the seed's demo client (WAAS_DEMO_CLIENT). */
  demo: DemoClient;
  /**
   * The event source mappings' own SQS client (on AWS their receives and deletes are Lambda's,
   * not the functions'): the benchmark meters it with SDK middleware, as it does the handlers'.
   */
  eventSource: SQSClient;
  /** The storage process's pid (it changes if the storage is restarted). */
  storagePid(): number;
  /** Invocations running now, by function. */
  inFlight(): Record<FunctionName, number>;
  /** The worker threads of the functions' environments alive now. */
  threadIds(): number[];
  /** Stops taking work, lets the attempts in flight end (each within its function's timeout), then stops. */
  stop(): Promise<void>;
}

/** Environments kept ready from the start: the ones every job needs at once. */
const warm: Partial<Record<FunctionName, number>> = { api: 1, execute: 1 };

/** Whether `condition` came to hold within `timeoutMs` (looked at every 50 ms). */
async function drained(condition: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return true;
}

/** How often, and how soon again, a storage process that died is started anew before the stack gives up. */
const storageRestarts = { attempts: 5, pauseMs: 1_000 } as const;

export async function startLocalStack(options: LocalStackOptions): Promise<LocalStack> {
  const dataDir = resolve(options.dataDir);
  // A fault spec that does not read is a start that fails, at once, saying why.
  const faults = faultsFromEnv(process.env[faultsEnvName]);
  // The console's files, made from its source as the api function's bundling makes them, while
  // the storage starts; the api function reads them from the folder it is told.
  const consoleDir = join(dataDir, 'console');
  const consoleBuilt = buildConsole(consoleDir);
  // Awaited below; a storage that fails to start first is the start's failure.
  consoleBuilt.catch(() => undefined);
  let storage: Storage = await startStorage(dataDir);
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
    [env.limitsTable]: localTableNames.limits,
    [env.schedulesTable]: localTableNames.schedules,
    [env.egressAllowCidrs]: options.egressAllowCidrs,
    [env.indexEveryJob]: String(options.indexEveryJob ?? true),
  });
  // Provisioning's clients, and the event source's, the handlers' apart; never through the fault
  // proxies (those stand between the handlers and the storage alone).
  const endpoints = { dynamodb: dynamodbEndpoint, sqs: sqsEndpoint };
  const setup = awsClients({ endpoints });
  const eventSource = awsClients({ endpoints, requestTimeoutMs: (Math.max(...Object.values(queues).map((queue) => queue.waitSeconds)) + 5) * 1_000 });
  await provisionTables(setup.dynamodb);
  const upgraded = await upgradeStore(setup.documents, localTableNames.jobs, dataDir);
  const made: Record<QueueName, LocalQueue> = await provisionQueues(setup.sqs);
  Object.assign(process.env, {
    [env.jobsQueueUrl]: made.jobs.url,
    [env.callbacksQueueUrl]: made.callbacks.url,
    [env.jobsDeadLetterQueueUrl]: made.jobsDeadLetter.url,
    [env.callbacksDeadLetterQueueUrl]: made.callbacksDeadLetter.url,
  });

  // The stack's own work on the store (the demo client, recovery) runs the core here; the
  // functions run in their environments.
  const [wiring, sweepCore, scheduleCore] = await Promise.all([import('../lambdas/adapters/wiring.ts'), import('../lambdas/core/sweep.ts'), import('../lambdas/core/schedules.ts')]);
  const services = wiring.services();
  const demo = await ensureDemoClient(services.clients, options.demoClient ?? 'on');
  // Nothing is in flight yet: every lease found was taken before a crash, and queues start empty.
  // The whole index in one go, with no deadline and no lease (the sweeper's schedule starts later).
  const recovered = await sweepCore.requeueUnsettled(services, { expireLeases: true });
  // In fault mode the handlers, and they alone, reach the storage through its fault proxies.
  if (storage.faulty) Object.assign(process.env, { AWS_ENDPOINT_URL_DYNAMODB: storage.faulty.dynamodbEndpoint, AWS_ENDPOINT_URL_SQS: storage.faulty.sqsEndpoint });

  await consoleBuilt;
  process.env[consoleDirEnv] = consoleDir;
  const runtime = Object.fromEntries(
    (Object.keys(functions) as FunctionName[]).map((name) => {
      const spec = functions[name];
      const fn = new LocalFunction({
        name,
        entry: spec.entry,
        timeoutSeconds: spec.timeoutSeconds,
        memoryMb: spec.memoryMb,
        maxConcurrency: spec.localConcurrency,
        perEnvironment: spec.localConcurrency,
        warm: warm[name] ?? 0,
        ...(options.preload ? { preload: options.preload } : {}),
        ...(options.onError ? { onError: options.onError } : {}),
      });
      return [name, fn];
    }),
  ) as Record<FunctionName, LocalFunction>;
  await Promise.all(Object.values(runtime).map((fn) => fn.start()));

  let storageUp = true;
  const pollers = (Object.keys(queues) as QueueName[]).map((name) => {
    const spec = queues[name];
    return new QueuePoller({
      sqs: eventSource.sqs,
      queueUrl: made[name].url,
      queueArn: made[name].arn,
      invoke: (event: SQSEvent) => runtime[spec.consumer].invoke<SQSBatchResponse>(event),
      batchSize: spec.batchSize,
      waitSeconds: spec.waitSeconds,
      concurrency: spec.maxConcurrency,
      ...(options.onError ? { onError: (error: unknown) => storageUp && options.onError?.(error) } : {}),
    });
  });
  for (const poller of pollers) poller.start();
  const front = await startFront({
    invoke: (event: APIGatewayProxyEventV2) => runtime.api.invoke<APIGatewayProxyStructuredResultV2>(event),
    host: options.host,
    port: options.port,
    healthy: () => storageUp,
    ...(options.onError ? { onError: options.onError } : {}),
  });
  // EventBridge's schedule, locally: the sweeper every `sweep.everyMinutes`.
  const sweeping = setInterval(() => {
    if (storageUp) runtime.sweeper.invoke({}).catch((error: unknown) => options.onError?.(error));
  }, sweep.everyMinutes * 60_000);
  sweeping.unref();
  // ...and the release every `release.everyMinutes`, its first run at once: delayed jobs that
  // fell due while the stack was down are sent now, not a minute after the start.
  const releasing = () => {
    if (storageUp) runtime.release.invoke({}).catch((error: unknown) => options.onError?.(error));
  };
  const releaseTimer = setInterval(releasing, release.everyMinutes * 60_000);
  releaseTimer.unref();
  releasing();
  // EventBridge Scheduler's part, locally: every second, each schedule's runs now due, each run an
  // invocation of the schedule-run function, as EventBridge Scheduler makes it. Runs missed while
  // the stack was down are due at start, and made then (core/schedules.ts, runDue). One pass at a time.
  let passing = false;
  const scheduling = setInterval(() => {
    if (!storageUp || passing || stopping) return;
    passing = true;
    scheduleCore
      .runDue(services, (scheduleId, scheduledTime) => runtime.scheduleRun.invoke({ schedule_id: scheduleId, scheduled_time: new Date(scheduledTime).toISOString() }))
      .catch((error: unknown) => options.onError?.(error))
      .finally(() => (passing = false));
  }, scheduleRuns.localEverySeconds * 1_000);
  scheduling.unref();

  const file: StackFile = { pid: process.pid, url: front.url, dynamodbEndpoint, sqsEndpoint, tables: localTableNames };
  const path = join(dataDir, stackFileName);
  writeFileSync(`${path}.tmp`, JSON.stringify(file, null, 2));
  renameSync(`${path}.tmp`, path);

  let stopping = false;
  /**
   * The storage process died: the stack answers 503 meanwhile, starts it again on the same
   * ports, makes the queues (fauxqs kept them in memory) and queues again what is unsettled.
   */
  const supervise = (watched: Storage) => {
    void watched.exited.then(async (code) => {
      if (stopping) return;
      storageUp = false;
      options.onError?.(new Error(`the storage process exited (${code}); starting it again`));
      for (let attempt = 1; ; attempt++) {
        // A pause first, growing: whatever killed it may take a moment to pass.
        await new Promise((resolve) => setTimeout(resolve, storageRestarts.pauseMs * attempt));
        if (stopping) return;
        try {
          storage = await startStorage(dataDir, { ports: watched.ports });
          await provisionQueues(setup.sqs);
          // The queues came back empty. Once no attempt is in flight any more (the outage ended
          // those), every lease found was taken before it: expire them, as at a start.
          const quiet = await drained(() => runtime.execute.inFlight + runtime.notify.inFlight + runtime.deadLetter.inFlight === 0, functions.execute.timeoutSeconds * 1_000);
          await sweepCore.requeueUnsettled(services, { expireLeases: quiet });
          storageUp = true;
          supervise(storage);
          return;
        } catch (error) {
          if (stopping) return;
          if (attempt >= storageRestarts.attempts) {
            options.onFatal?.(new Error(`the storage process could not be started again: ${error instanceof Error ? error.message : String(error)}`));
            return;
          }
        }
      }
    });
  };
  supervise(storage);

  let stopped: Promise<void> | undefined;
  return {
    url: front.url,
    dataDir,
    recovered,
    upgraded,
    ...(faults ? { faults } : {}),
    demo,
    eventSource: eventSource.sqs,
    storagePid: () => storage.pid,
    inFlight: () => Object.fromEntries(Object.entries(runtime).map(([name, fn]) => [name, fn.inFlight])) as Record<FunctionName, number>,
    threadIds: () => Object.values(runtime).flatMap((fn) => fn.threadIds),
    stop: () =>
      (stopped ??= (async () => {
        stopping = true;
        clearInterval(sweeping);
        clearInterval(releaseTimer);
        clearInterval(scheduling);
        // No new work: the front takes no request and the pollers no message; what is in hand ends.
        await Promise.all([front.close(), ...pollers.map((poller) => poller.stop())]);
        await Promise.all(Object.values(runtime).map((fn) => fn.stop()));
        services.http.close();
        await storage.stop();
        // After the storage: a long poll a stopped poller left in hand ends with it.
        closeAwsClients(setup);
        closeAwsClients(eventSource);
        closeAwsClients(services.aws);
      })()),
  };
}
