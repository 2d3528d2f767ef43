/**
 * The waas stack, read top to bottom as the diagram:
 *
 *   client ─HTTP─▶ API Gateway ─▶ api ─▶ jobs table, jobs queue; clients table (credentials), limits table (failures)
 *   jobs queue ─▶ execute ─▶ target service, then the callback URL; jobs table
 *   callbacks queue ─▶ notify ─▶ callback URL (signed with the clients table's secrets); jobs table
 *   either dead-letter queue ─▶ deadLetter ─▶ jobs table (failed), callbacks queue
 *   every minute ─▶ sweeper ─▶ jobs table's unsettled index (and its own state item) ─▶ jobs queue, callbacks queue
 *   every minute ─▶ release ─▶ jobs table's due index (and its own state item) ─▶ jobs queue, delayed
 *   api ─▶ EventBridge Scheduler (one schedule per waas schedule) ─▶ scheduleRun ─▶ schedules table, jobs table, jobs queue
 *
 * Shapes and numbers come from definitions.ts, which the local stack reads too.
 */
import { Annotations, CfnOutput, Duration, Stack, type StackProps } from 'aws-cdk-lib';
import { Rule, Schedule } from 'aws-cdk-lib/aws-events';
import { PolicyStatement } from 'aws-cdk-lib/aws-iam';
import { LambdaFunction } from 'aws-cdk-lib/aws-events-targets';
import { SqsEventSource } from 'aws-cdk-lib/aws-lambda-event-sources';
import { SqsDestination } from 'aws-cdk-lib/aws-lambda-destinations';
import type { NodejsFunction } from 'aws-cdk-lib/aws-lambda-nodejs';
import type { Queue } from 'aws-cdk-lib/aws-sqs';
import type { Construct } from 'constructs';
import { env, queues, release, scheduleRuns, sweep, tables as tablesSpec, type FunctionName, type QueueName } from './definitions.ts';
import { readSettings } from './settings.ts';
import { Functions } from './constructs/functions.ts';
import { HttpFront } from './constructs/http-front.ts';
import { Alarms } from './constructs/alarms.ts';
import { OperationsDashboard } from './constructs/dashboard.ts';
import { ScheduleTimers } from './constructs/schedule-timers.ts';
import { Tables } from './constructs/tables.ts';
import { WorkQueues } from './constructs/work-queues.ts';

export class WaasStack extends Stack {
  readonly tables: Tables;
  readonly queues: Readonly<Record<QueueName, Queue>>;
  readonly functions: Readonly<Record<FunctionName, NodejsFunction>>;
  readonly api: HttpFront;
  readonly alarms: Alarms;
  readonly schedules: ScheduleTimers;

  constructor(scope: Construct, id: string, props?: StackProps) {
    super(scope, id, { description: 'waas: webhooks as a service', ...props });
    const settings = readSettings(this);

    // Storage and transport.
    const tables = new Tables(this, 'Tables');
    const queue = new WorkQueues(this, 'Queues').byName;

    // Compute. Every variable named in definitions' `env` must be set (the type says so);
    // none of them is a credential, and the demo client exists only in the local stack.
    const environment: Record<(typeof env)[keyof typeof env], string> = {
      [env.jobsTable]: tables.jobs.tableName,
      [env.clientsTable]: tables.clients.tableName,
      [env.limitsTable]: tables.limits.tableName,
      [env.schedulesTable]: tables.schedules.tableName,
      [env.jobsQueueUrl]: queue.jobs.queueUrl,
      [env.callbacksQueueUrl]: queue.callbacks.queueUrl,
      [env.jobsDeadLetterQueueUrl]: queue.jobsDeadLetter.queueUrl,
      [env.callbacksDeadLetterQueueUrl]: queue.callbacksDeadLetter.queueUrl,
      [env.retentionDays]: String(settings.retentionDays),
      // On AWS no private address is ever a legitimate target.
      [env.egressAllowCidrs]: '',
      // SQS keeps its messages: only work waiting on a retry needs the sweeper's index.
      [env.indexEveryJob]: 'false',
    };
    const service = this.stackName;
    const { apiReservedConcurrency, throttle } = settings;
    if (apiReservedConcurrency > 0 && apiReservedConcurrency < throttle.burstLimit) {
      Annotations.of(this).addWarning(
        `apiReservedConcurrency (${apiReservedConcurrency}) is below apiThrottleBurst (${throttle.burstLimit}): a burst the stage lets through can meet the api's throttle, which API Gateway answers 500, not 429`,
      );
    }
    const fn = new Functions(this, 'Functions', {
      environment,
      logRetention: settings.logRetention,
      service,
      tracing: settings.tracing,
      // Submissions keep their share of the account's concurrency whatever the queues do.
      reservedConcurrency: { api: settings.apiReservedConcurrency },
    }).byName;

    // Each queue feeds its consumer, in batches whose failed messages alone come back, with at
    // most its maximum concurrency of batches in flight: a backlog behind a slow target waits
    // in its queue instead of taking the account's whole Lambda pool. Binding the event source
    // also grants the consumer receive, delete and change-visibility.
    const maxConcurrency = (name: QueueName): number => (name === 'jobs' || name === 'callbacks' ? settings.maxConcurrency[name] : queues[name].maxConcurrency);
    for (const [name, spec] of Object.entries(queues) as Array<[QueueName, (typeof queues)[QueueName]]>) {
      fn[spec.consumer].addEventSource(
        new SqsEventSource(queue[name], { batchSize: spec.batchSize, reportBatchItemFailures: true, maxConcurrency: maxConcurrency(name) }),
      );
    }

    // The arrows: who may touch what, and no more. Table actions are listed one by one (the
    // grant helpers would add every read or write, and every index).
    const allow = (name: FunctionName, actions: string[], resources: string[]) =>
      fn[name].addToRolePolicy(new PolicyStatement({ actions: actions.map((a) => `dynamodb:${a}`), resources }));
    const jobsTable = [tables.jobs.tableArn];
    const clientsTable = [tables.clients.tableArn];
    const limitsTable = [tables.limits.tableArn];
    // api: lists a new job (or a batch's jobs) in a listing entry, queues it and stores it (its
    // request first, in an item of its own), claims, settles and releases Idempotency-Keys, reads
    // status and credentials, cancels a job; reads a job's partition (its attempts, its request
    // for a replay) and a client's listing entries (Query of the table: no index), then the jobs
    // they name (BatchGetItem: reads alone; the api writes no batch).
    allow('api', ['GetItem', 'PutItem', 'UpdateItem', 'DeleteItem', 'Query', 'BatchGetItem'], jobsTable);
    allow('api', ['GetItem'], clientsTable);
    // ...and reads and counts failed authentications per source, one item per window.
    allow('api', ['GetItem', 'UpdateItem'], limitsTable);
    queue.jobs.grantSendMessages(fn.api);
    // execute: leases an attempt (the write returns the job; its request, an item of its own, is
    // read after: GetItem; an older job's request beside its state comes with the write), records its answer, makes the callback (signed with the client's
    // secrets) and records it; every retry is the message in hand, made visible later.
    // An attempt followed by a retry is kept first, in an item of its own (PutItem).
    allow('execute', ['GetItem', 'PutItem', 'UpdateItem'], jobsTable);
    allow('execute', ['GetItem'], clientsTable);
    // ...asks a job's flow key for a start (a consistent GetItem, a conditional PutItem of the
    // key's item), lets its slot go and pauses the key on a Retry-After (UpdateItem).
    allow('execute', ['GetItem', 'PutItem', 'UpdateItem'], limitsTable);
    // A message it cannot hand back (ChangeMessageVisibility failing) it sends again, due then.
    queue.jobs.grantSendMessages(fn.execute);
    // notify: signs the callback with the client's secrets, leases and records its outcome.
    allow('notify', ['GetItem', 'UpdateItem'], jobsTable);
    allow('notify', ['GetItem'], clientsTable);
    queue.callbacks.grantSendMessages(fn.notify);
    // deadLetter: settles a given-up job as failed and still tells its callback.
    allow('deadLetter', ['GetItem', 'UpdateItem'], jobsTable);
    queue.callbacks.grantSendMessages(fn.deadLetter);
    // A dead letter it cannot hand back soon (ChangeMessageVisibility failing) it sends again.
    queue.jobsDeadLetter.grantSendMessages(fn.deadLetter);
    queue.callbacksDeadLetter.grantSendMessages(fn.deadLetter);
    // sweeper: walks the unsettled index (what it decides on is in the index), takes its lease
    // and saves where it stopped (its state item), takes settled jobs out of the index, and
    // re-queues what lost its message. An entry of a keys-only index (a local DATA_DIR's; on
    // AWS the index carries them) is read from its job for the index's attributes alone, and
    // the condition holds GetItem to those: it never reads a job's request or answer.
    const unsettledIndex = tablesSpec.jobs.unsettledIndex;
    allow('sweeper', ['Query'], [`${tables.jobs.tableArn}/index/${unsettledIndex.name}`]);
    allow('sweeper', ['UpdateItem'], jobsTable);
    fn.sweeper.addToRolePolicy(
      new PolicyStatement({
        actions: ['dynamodb:GetItem'],
        resources: jobsTable,
        conditions: {
          'ForAllValues:StringEquals': { 'dynamodb:Attributes': [tablesSpec.jobs.partitionKey, tablesSpec.jobs.sortKey, unsettledIndex.sortKey, ...unsettledIndex.projected] },
          StringEqualsIfExists: { 'dynamodb:Select': 'SPECIFIC_ATTRIBUTES' },
        },
      }),
    );
    // SendMessage alone (it covers SendMessageBatch): grantSendMessages would add
    // GetQueueAttributes and GetQueueUrl, which the sweeper never calls.
    fn.sweeper.addToRolePolicy(new PolicyStatement({ actions: ['sqs:SendMessage'], resources: [queue.jobs.queueArn, queue.callbacks.queueArn] }));
    // One run at a time: the sweeper's lease keeps them apart, and Lambda neither tries a failed
    // run again nor starts one that waited (throttled) past a minute: the next minute's run covers it.
    fn.sweeper.configureAsyncInvoke({ retryAttempts: 0, maxEventAge: Duration.minutes(sweep.everyMinutes) });

    // release: queries the due index's buckets, sends their jobs (SendMessageBatch, delayed),
    // then takes each out of its bucket (UpdateItem REMOVE due, conditional), and reads and
    // saves its progress (GetItem and UpdateItem of its own state item). It never reads a job.
    const dueIndex = tablesSpec.jobs.dueIndex;
    allow('release', ['Query'], [`${tables.jobs.tableArn}/index/${dueIndex.name}`]);
    allow('release', ['UpdateItem'], jobsTable);
    fn.release.addToRolePolicy(
      new PolicyStatement({
        actions: ['dynamodb:GetItem'],
        resources: jobsTable,
        conditions: { 'ForAllValues:StringEquals': { 'dynamodb:LeadingKeys': [tablesSpec.jobs.releaseState.pk] } },
      }),
    );
    fn.release.addToRolePolicy(new PolicyStatement({ actions: ['sqs:SendMessage'], resources: [queue.jobs.queueArn] }));
    // As the sweeper's: no retry of a failed run, none of one that waited past a minute (the next covers it).
    fn.release.configureAsyncInvoke({ retryAttempts: 0, maxEventAge: Duration.minutes(release.everyMinutes) });
    // Schedules: the api makes each one's record and its EventBridge Scheduler schedule (and
    // deletes them), reading a client's through the schedules' client index; each run is a
    // submit (core/schedules.ts): it reads the schedule and its client, claims the run's key and
    // stores the job as the api does, queues it, and moves the schedule's next_run on.
    const schedulesTable = [tables.schedules.tableArn];
    allow('api', ['GetItem', 'PutItem', 'DeleteItem'], schedulesTable);
    allow('api', ['Query'], [`${tables.schedules.tableArn}/index/${tablesSpec.schedules.clientIndex.name}`]);
    allow('scheduleRun', ['GetItem', 'UpdateItem'], schedulesTable);
    allow('scheduleRun', ['GetItem', 'PutItem', 'UpdateItem', 'DeleteItem'], jobsTable);
    allow('scheduleRun', ['GetItem'], clientsTable);
    queue.jobs.grantSendMessages(fn.scheduleRun);
    const timers = new ScheduleTimers(this, 'Schedules', { run: fn.scheduleRun, api: fn.api });
    // EventBridge Scheduler invokes it asynchronously: Lambda's own retries of a run that threw,
    // then the same dead-letter queue as the runs EventBridge Scheduler could not hand over.
    fn.scheduleRun.configureAsyncInvoke({ retryAttempts: 2, maxEventAge: Duration.seconds(scheduleRuns.maximumEventAgeSeconds), onFailure: new SqsDestination(timers.deadLetter) });

    // The front door.
    const api = new HttpFront(this, 'Api', {
      handler: fn.api,
      throttle: settings.throttle,
      logRetention: settings.logRetention,
    });

    // Someone should look: each alarm reaches the topic, and the README's runbook says what to do.
    const alarms = new Alarms(this, 'Alarms', { queues: queue, functions: fn, api: api.api, service, email: settings.alarmEmail });
    new OperationsDashboard(this, 'Dashboard', { queues: queue, functions: fn, api: api.api, service });

    // The safety net: on a schedule, the sweeper re-queues unsettled work that lost its message.
    new Rule(this, 'SweepSchedule', {
      description: 'waas: re-queue unsettled jobs whose message was lost',
      schedule: Schedule.rate(Duration.minutes(sweep.everyMinutes)),
      // EventBridge's own retries of an invocation it could not hand to Lambda: none either.
      targets: [new LambdaFunction(fn.sweeper, { retryAttempts: 0, maxEventAge: Duration.minutes(sweep.everyMinutes) })],
    });

    // Delayed jobs: every minute, the release hands to the queue those that fall due within its reach.
    new Rule(this, 'ReleaseSchedule', {
      description: 'waas: queue the delayed jobs that fall due within 15 minutes',
      schedule: Schedule.rate(Duration.minutes(release.everyMinutes)),
      targets: [new LambdaFunction(fn.release, { retryAttempts: 0, maxEventAge: Duration.minutes(release.everyMinutes) })],
    });

    new CfnOutput(this, 'ApiUrl', { value: api.url, description: 'Base URL of the waas API' });
    new CfnOutput(this, 'JobsTableName', { value: tables.jobs.tableName });
    new CfnOutput(this, 'ClientsTableName', {
      value: tables.clients.tableName,
      description: 'Where `npm run clients -- create` adds clients for this deployment',
    });
    new CfnOutput(this, 'LimitsTableName', {
      value: tables.limits.tableName,
      description: 'Where the failed authentications of each source address are counted, a minute to an item',
    });
    new CfnOutput(this, 'AlarmTopicArn', { value: alarms.topic.topicArn, description: 'Where every alarm goes: subscribe a pager, chat or email to it' });
    new CfnOutput(this, 'JobsQueueUrl', { value: queue.jobs.queueUrl });
    new CfnOutput(this, 'CallbacksQueueUrl', { value: queue.callbacks.queueUrl });

    this.tables = tables;
    this.queues = queue;
    this.functions = fn;
    this.api = api;
    this.alarms = alarms;
    this.schedules = timers;
  }
}
