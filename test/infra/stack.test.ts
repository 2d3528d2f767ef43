/**
 * The synthesized CloudFormation template of the Waas stack, with the context of cdk.json (the
 * feature flags `cdk synth` uses) and real esbuild bundling, synthesized once for the whole file.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { App, Stack, type CfnElement } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import type { IConstruct } from 'constructs';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  deadLetterRetentionDays,
  defaultRetentionDays,
  env,
  functions,
  queues,
  routes,
  release,
  sweep,
  tables,
  visibilityTimeoutSeconds,
  type FunctionName,
  type QueueName,
  type QueueSpec,
} from '../../lib/definitions.ts';
import { withoutDueIndex, withoutUnsettledIndex } from '../../lib/constructs/tables.ts';
import { consoleAssetDir, consoleFiles } from '../../lambdas/core/console-assets.ts';
import { docsAssetDir, vendorAssets } from '../../lambdas/core/docs-assets.ts';
import { vendorAssetPath } from '../../lambdas/core/docs.ts';
import { WaasStack } from '../../lib/waas-stack.ts';

type Resource = { Type: string; Properties: Record<string, any>; DeletionPolicy?: string; UpdateReplacePolicy?: string };

const projectRoot = join(import.meta.dirname, '..', '..');
const cdkJson = JSON.parse(readFileSync(join(projectRoot, 'cdk.json'), 'utf8')) as { context: Record<string, unknown> };

let stack: WaasStack;
let template: Template;
let resources: Record<string, Resource>;
let assemblyDir: string;

// Bundling the five functions takes some 20 s of CPU: on a machine whose two cores other suites
// share, more than the default minute of wall time (a full run met it so).
beforeAll(() => {
  const app = new App({ context: cdkJson.context });
  stack = new WaasStack(app, 'Waas');
  const assembly = app.synth();
  assemblyDir = assembly.directory;
  const json = assembly.getStackArtifact(stack.artifactId).template as { Resources: Record<string, Resource> };
  template = Template.fromJSON(json);
  resources = json.Resources;
}, 180_000);

const logicalId = (construct: IConstruct): string => {
  const cfn = construct.node.defaultChild as CfnElement;
  return Stack.of(construct).getLogicalId(cfn);
};
const ofType = (type: string): Array<[string, Resource]> => Object.entries(resources).filter(([, r]) => r.Type === type);
const ref = (construct: IConstruct) => ({ Ref: logicalId(construct) });
const arnOf = (construct: IConstruct) => ({ 'Fn::GetAtt': [logicalId(construct), 'Arn'] });
const functionNames = Object.keys(functions) as FunctionName[];
const queueNames = Object.keys(queues) as QueueName[];
const workQueueNames = queueNames.filter((name) => 'deadLetter' in queues[name]);
const deadLetterQueueNames = queueNames.filter((name) => !('deadLetter' in queues[name]));

/** Every IAM action a function's role may take, per resource it names (as JSON of the intrinsic). */
function permissions(name: FunctionName): Map<string, Set<string>> {
  const role = stack.functions[name].role;
  if (!role) throw new Error(`${name} has no role`);
  const roleRef = JSON.stringify(ref(role));
  const byResource = new Map<string, Set<string>>();
  for (const [, policy] of ofType('AWS::IAM::Policy')) {
    if (!policy.Properties['Roles'].some((r: unknown) => JSON.stringify(r) === roleRef)) continue;
    for (const statement of policy.Properties['PolicyDocument'].Statement) {
      expect(statement.Effect).toBe('Allow');
      for (const resource of [statement.Resource].flat()) {
        const key = JSON.stringify(resource);
        const actions = byResource.get(key) ?? new Set<string>();
        for (const action of [statement.Action].flat()) actions.add(action);
        byResource.set(key, actions);
      }
    }
  }
  return byResource;
}
const actionsOn = (name: FunctionName, target: IConstruct): string[] =>
  [...(permissions(name).get(JSON.stringify(arnOf(target))) ?? [])].sort();

const writes = ['dynamodb:PutItem', 'dynamodb:UpdateItem', 'dynamodb:DeleteItem', 'dynamodb:BatchWriteItem'];

describe('HTTP API', () => {
  it('routes the seed API, GET /health, every v1 path (one greedy route) and the console to the api function', () => {
    const integrations = ofType('AWS::ApiGatewayV2::Integration');
    expect(integrations).toHaveLength(1);
    const [integrationId, integration] = integrations[0]!;
    expect(integration.Properties).toMatchObject({ IntegrationType: 'AWS_PROXY', PayloadFormatVersion: '2.0' });
    expect(JSON.stringify(integration.Properties['IntegrationUri'])).toContain(logicalId(stack.functions.api));

    const routeKeys = ofType('AWS::ApiGatewayV2::Route').map(([, route]) => {
      expect(route.Properties['Target']).toEqual({ 'Fn::Join': ['', ['integrations/', { Ref: integrationId }]] });
      return route.Properties['RouteKey'];
    });
    expect(routeKeys.sort()).toEqual(routes.map((r) => `${r.method} ${r.path}`).sort());
    template.resourceCountIs('AWS::ApiGatewayV2::Api', 1);
    template.hasResourceProperties('AWS::ApiGatewayV2::Api', { ProtocolType: 'HTTP' });
  });

  it('logs one JSON line per request to a log group, never headers, query strings or bodies', () => {
    const [, stage] = ofType('AWS::ApiGatewayV2::Stage')[0]!;
    expect(stage.Properties['StageName']).toBe('$default');
    const settings = stage.Properties['AccessLogSettings'];
    const destination = settings.DestinationArn['Fn::GetAtt'];
    expect(resources[destination[0]]?.Type).toBe('AWS::Logs::LogGroup');
    expect(resources[destination[0]]?.Properties['RetentionInDays']).toBe(30);

    const format = JSON.parse(settings.Format) as Record<string, string>;
    expect(Object.keys(format)).toEqual(
      expect.arrayContaining(['requestId', 'ip', 'routeKey', 'status', 'responseLength', 'integrationError']),
    );
    for (const variable of Object.values(format)) {
      expect(variable).toMatch(/^\$context\.[\w.]+$/);
      expect(variable).not.toMatch(/header|body|querystring|authorizer|path/i);
    }
  });

  it('throttles the default stage to a burst of 100 (what the api\'s reservation serves at once) and 100 requests a second', () => {
    template.hasResourceProperties('AWS::ApiGatewayV2::Stage', {
      StageName: '$default',
      AutoDeploy: true,
      DefaultRouteSettings: { ThrottlingBurstLimit: 100, ThrottlingRateLimit: 100 },
    });
  });
});

describe('DynamoDB tables', () => {
  it('keys clients by clientId, and jobs by pk and sk with a TTL on expiresAt', () => {
    expect(resources[logicalId(stack.tables.clients)]?.Properties).toMatchObject({
      KeySchema: [{ AttributeName: tables.clients.partitionKey, KeyType: 'HASH' }],
      AttributeDefinitions: [{ AttributeName: 'clientId', AttributeType: 'S' }],
    });
    expect(resources[logicalId(stack.tables.jobs)]?.Properties).toMatchObject({
      KeySchema: [
        { AttributeName: 'pk', KeyType: 'HASH' },
        { AttributeName: 'sk', KeyType: 'RANGE' },
      ],
      TimeToLiveSpecification: { AttributeName: 'expiresAt', Enabled: true },
    });
    expect(resources[logicalId(stack.tables.clients)]?.Properties['TimeToLiveSpecification']).toBeUndefined();
  });

  it('keys the limits table by key, with a TTL on expiresAt', () => {
    expect(resources[logicalId(stack.tables.limits)]?.Properties).toMatchObject({
      KeySchema: [{ AttributeName: tables.limits.partitionKey, KeyType: 'HASH' }],
      AttributeDefinitions: [{ AttributeName: 'key', AttributeType: 'S' }],
      TimeToLiveSpecification: { AttributeName: 'expiresAt', Enabled: true },
    });
    expect(resources[logicalId(stack.tables.limits)]?.Properties['GlobalSecondaryIndexes']).toBeUndefined();
  });

  it('bills every table on demand, encrypts it, recovers it to a point in time, and keeps it on stack deletion', () => {
    const all = ofType('AWS::DynamoDB::Table');
    expect(all).toHaveLength(4);
    for (const [, table] of all) {
      expect(table.Properties).toMatchObject({
        BillingMode: 'PAY_PER_REQUEST',
        PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
        SSESpecification: { SSEEnabled: true },
      });
      expect(table.DeletionPolicy).toBe('Retain');
      expect(table.UpdateReplacePolicy).toBe('Retain');
    }
  });
});

describe('SQS queues', () => {
  it('gives every queue the visibility timeout of definitions (six times its consumer timeout)', () => {
    for (const name of queueNames) {
      const seconds = visibilityTimeoutSeconds(name);
      expect(seconds).toBe(functions[queues[name].consumer].timeoutSeconds * 6);
      expect(resources[logicalId(stack.queues[name])]?.Properties['VisibilityTimeout'], name).toBe(seconds);
    }
  });

  it('moves a message to its dead-letter queue after maxReceiveCount receives', () => {
    for (const name of workQueueNames) {
      const { deadLetter }: QueueSpec = queues[name];
      if (deadLetter === undefined) throw new Error(`${name} has no dead-letter queue`);
      expect(resources[logicalId(stack.queues[name])]?.Properties['RedrivePolicy'], name).toEqual({
        deadLetterTargetArn: arnOf(stack.queues[deadLetter.queue]),
        maxReceiveCount: deadLetter.maxReceiveCount,
      });
    }
  });

  it('keeps dead letters 14 days and gives dead-letter queues no dead-letter queue of their own', () => {
    expect(deadLetterRetentionDays * 24 * 60 * 60).toBe(1_209_600);
    for (const name of deadLetterQueueNames) {
      const properties = resources[logicalId(stack.queues[name])]?.Properties;
      expect(properties?.['MessageRetentionPeriod'], name).toBe(1_209_600);
      expect(properties?.['RedrivePolicy'], name).toBeUndefined();
    }
  });

  it('encrypts every queue and refuses requests without TLS', () => {
    // The work queues, their dead-letter queues, and the schedules' runs' dead-letter queue.
    const every = [...queueNames.map((name) => stack.queues[name]), stack.schedules.deadLetter];
    expect(ofType('AWS::SQS::Queue')).toHaveLength(every.length);
    for (const [, queue] of ofType('AWS::SQS::Queue')) {
      expect(queue.Properties['SqsManagedSseEnabled']).toBe(true);
    }
    for (const queue of every) {
      template.hasResourceProperties('AWS::SQS::QueuePolicy', {
        Queues: [ref(queue)],
        PolicyDocument: {
          Statement: Match.arrayWith([
            Match.objectLike({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }),
          ]),
        },
      });
    }
  });
});

describe('Lambda functions', () => {
  it('feeds each queue to its consumer in batches that report partial failures, at most the concurrency of definitions (the local stack\'s too)', () => {
    const mappings = ofType('AWS::Lambda::EventSourceMapping');
    expect(mappings).toHaveLength(queueNames.length);
    for (const name of queueNames) {
      const spec = queues[name];
      template.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
        EventSourceArn: arnOf(stack.queues[name]),
        FunctionName: ref(stack.functions[spec.consumer]),
        BatchSize: spec.batchSize,
        FunctionResponseTypes: ['ReportBatchItemFailures'],
        ScalingConfig: { MaximumConcurrency: spec.maxConcurrency },
      });
      // Lambda's bounds for an SQS mapping; the local stack runs the consumer in enough environments.
      expect(spec.maxConcurrency).toBeGreaterThanOrEqual(2);
      expect(spec.maxConcurrency).toBeLessThanOrEqual(1000);
    }
    for (const name of functionNames) {
      const consumed = queueNames.filter((queue) => queues[queue].consumer === name).reduce((sum, queue) => sum + queues[queue].maxConcurrency, 0);
      expect(functions[name].localConcurrency, name).toBeGreaterThanOrEqual(consumed);
    }
  });

  it('runs every function on Node.js 24 on arm64 with the memory and timeout of definitions', () => {
    expect(ofType('AWS::Lambda::Function')).toHaveLength(functionNames.length);
    for (const name of functionNames) {
      expect(resources[logicalId(stack.functions[name])]?.Properties, name).toMatchObject({
        Runtime: 'nodejs24.x',
        Architectures: ['arm64'],
        Handler: 'index.handler',
        MemorySize: functions[name].memoryMb,
        Timeout: functions[name].timeoutSeconds,
      });
    }
  });

  it('ships each function as one ES module with require() available and the AWS SDK bundled in, not taken from the runtime', () => {
    const sdk = JSON.parse(readFileSync(join(import.meta.dirname, '..', '..', 'node_modules', '@aws-sdk', 'client-dynamodb', 'package.json'), 'utf8')) as { version: string };
    for (const name of functionNames) {
      const key: string = resources[logicalId(stack.functions[name])]?.Properties['Code'].S3Key;
      const bundle = join(assemblyDir, `asset.${key.replace(/\.zip$/, '')}`, 'index.mjs');
      expect(existsSync(bundle), name).toBe(true);
      const code = readFileSync(bundle, 'utf8');
      expect(code.slice(0, 80), name).toMatch(/^import \{ createRequire \} from 'module';/);
      // What is tested is what runs: the SDK at the version package.json pins is in the bundle
      // (its user agent names that version), and nothing is imported from the runtime's copy
      // (the SDK's own messages quote such imports in brackets: those are text).
      expect(code, name).toContain(sdk.version);
      expect(code, name).not.toMatch(/(?<!\[)(?:from\s*|import\(|require\()["']@(?:aws-sdk|smithy)\//);
      expect(code.length, name).toBeLessThan(1024 * 1024);
    }
  });

  it("ships the api function's documentation page with Swagger UI's files beside its bundle, not in it, and no other function with them", () => {
    for (const name of functionNames) {
      const key: string = resources[logicalId(stack.functions[name])]?.Properties['Code'].S3Key;
      const assetDir = join(assemblyDir, `asset.${key.replace(/\.zip$/, '')}`);
      for (const asset of vendorAssets) {
        const copied = join(assetDir, docsAssetDir, asset.file);
        expect(existsSync(copied), `${name}: ${asset.file}`).toBe(name === 'api');
        if (name === 'api') expect(readFileSync(copied, 'utf8')).toBe(readFileSync(vendorAssetPath(asset), 'utf8'));
      }
    }
  });

  it("ships the console's script and style sheet, built from console/src, beside the api function's bundle, not in it, and no other function with them", () => {
    for (const name of functionNames) {
      const key: string = resources[logicalId(stack.functions[name])]?.Properties['Code'].S3Key;
      const assetDir = join(assemblyDir, `asset.${key.replace(/\.zip$/, '')}`);
      for (const file of consoleFiles) {
        const built = join(assetDir, consoleAssetDir, file);
        expect(existsSync(built), `${name}: ${file}`).toBe(name === 'api');
        if (name === 'api') expect(readFileSync(built, 'utf8').length, file).toBeGreaterThan(1_000);
      }
      if (name === 'api') expect(readFileSync(join(assetDir, 'index.mjs'), 'utf8')).not.toContain('jobs-title');
    }
  });

  it('logs each function to its own log group, kept one month, in JSON lines without Lambda\'s per-invocation lines', () => {
    for (const name of functionNames) {
      const loggingConfig = resources[logicalId(stack.functions[name])]?.Properties['LoggingConfig'];
      expect(loggingConfig, name).toMatchObject({ LogFormat: 'JSON', SystemLogLevel: 'WARN' });
      const logGroupId: string = loggingConfig.LogGroup.Ref;
      expect(resources[logGroupId]?.Type, name).toBe('AWS::Logs::LogGroup');
      expect(resources[logGroupId]?.Properties['RetentionInDays'], name).toBe(30);
    }
    const logGroups = ofType('AWS::Logs::LogGroup');
    expect(logGroups).toHaveLength(functionNames.length + 1);
  });

  it('tells every function where its tables and queues are, keeps jobs 30 days, allows no private egress, and indexes only work waiting on a retry', () => {
    for (const name of functionNames) {
      const variables = resources[logicalId(stack.functions[name])]?.Properties['Environment'].Variables;
      expect(Object.keys(variables), name).toEqual(expect.arrayContaining(Object.values(env)));
      expect(variables).toMatchObject({
        [env.jobsTable]: ref(stack.tables.jobs),
        [env.clientsTable]: ref(stack.tables.clients),
        [env.limitsTable]: ref(stack.tables.limits),
        [env.jobsQueueUrl]: ref(stack.queues.jobs),
        [env.callbacksQueueUrl]: ref(stack.queues.callbacks),
        [env.retentionDays]: String(defaultRetentionDays),
        [env.egressAllowCidrs]: '',
        // SQS keeps its messages: a job enters the sweeper's index only to wait on a retry.
        [env.indexEveryJob]: 'false',
        [env.jobsDeadLetterQueueUrl]: ref(stack.queues.jobsDeadLetter),
        [env.callbacksDeadLetterQueueUrl]: ref(stack.queues.callbacksDeadLetter),
        // Logs and metrics carry the stack's name: two deployments in one account stay apart.
        POWERTOOLS_SERVICE_NAME: 'Waas',
        POWERTOOLS_TRACE_ENABLED: 'false',
      });
    }
  });

  it('never ships the demo client credentials of the local stack', () => {
    const text = JSON.stringify(resources);
    expect(text).not.toContain('d7811aa4852d7c021df3da133f8d3e11ad1e5c42d3ed0a1a');
    expect(text).not.toContain('66666666666668');
    for (const [, fn] of ofType('AWS::Lambda::Function')) {
      const names = Object.keys(fn.Properties['Environment'].Variables);
      expect(names.filter((n) => /TOKEN|SECRET|PASSWORD|CLIENT_ID|ACCESS_KEY/i.test(n))).toEqual([]);
    }
  });
});

describe('IAM', () => {
  it('grants no wildcard action in any policy', () => {
    const policies = [
      ...ofType('AWS::IAM::Policy').map(([, p]) => p.Properties['PolicyDocument']),
      ...ofType('AWS::IAM::Role').flatMap(([, r]) => (r.Properties['Policies'] ?? []).map((p: any) => p.PolicyDocument)),
      ...ofType('AWS::SQS::QueuePolicy').map(([, p]) => p.Properties['PolicyDocument']),
    ];
    expect(policies.length).toBeGreaterThan(functionNames.length);
    for (const document of policies) {
      for (const statement of document.Statement) {
        if (statement.Effect === 'Deny') continue; // the TLS-only deny covers sqs:* on purpose
        for (const action of [statement.Action].flat()) expect(action).not.toContain('*');
      }
    }
  });

  it('attaches no managed policy: each role holds only its own grants', () => {
    for (const [id, role] of ofType('AWS::IAM::Role')) {
      expect(role.Properties['ManagedPolicyArns']).toBeUndefined();
      // EventBridge Scheduler's role is the one other, asserted below.
      if (id === logicalId(stack.schedules.role)) continue;
      expect(role.Properties['AssumeRolePolicyDocument'].Statement).toEqual([
        expect.objectContaining({ Principal: { Service: 'lambda.amazonaws.com' }, Action: 'sts:AssumeRole' }),
      ]);
    }
  });

  it('lets the api write jobs and keys (never in a batch, which is not atomic), read a job\'s partition and a client\'s listing entries on the table itself, no index of it, only read clients, and queue jobs but not callbacks', () => {
    expect(actionsOn('api', stack.tables.jobs)).toEqual(['dynamodb:BatchGetItem', 'dynamodb:DeleteItem', 'dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:Query', 'dynamodb:UpdateItem']);
    // No index of the jobs table (not the sweeper's): only, of the schedules table, its client index.
    const schedulesIndex = JSON.stringify({ 'Fn::Join': ['', [arnOf(stack.tables.schedules), `/index/${tables.schedules.clientIndex.name}`]] });
    const indexes = [...permissions('api').keys()].filter((resource) => resource.includes('/index/'));
    expect(indexes).toEqual([schedulesIndex]);
    expect(actionsOn('api', stack.tables.clients)).toEqual(['dynamodb:GetItem']);
    expect(actionsOn('api', stack.queues.jobs)).toContain('sqs:SendMessage');
    expect(actionsOn('api', stack.queues.callbacks)).toEqual([]);
  });

  it('lets execute consume jobs (postponing, or sending a copy when it cannot, included) and read signing secrets, and send no callback message', () => {
    expect(actionsOn('execute', stack.queues.jobs)).toEqual(
      expect.arrayContaining(['sqs:ReceiveMessage', 'sqs:DeleteMessage', 'sqs:ChangeMessageVisibility', 'sqs:SendMessage']),
    );
    expect(actionsOn('execute', stack.queues.callbacks)).toEqual([]);
    // PutItem: an attempt followed by a retry is kept in an item of its own.
    expect(actionsOn('execute', stack.tables.jobs)).toEqual(['dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:UpdateItem']);
    expect(actionsOn('execute', stack.tables.clients)).toEqual(['dynamodb:GetItem']);
  });

  it('lets notify consume callbacks and read, never write, the signing secrets', () => {
    expect(actionsOn('notify', stack.queues.callbacks)).toEqual(
      expect.arrayContaining(['sqs:ReceiveMessage', 'sqs:DeleteMessage', 'sqs:ChangeMessageVisibility']),
    );
    expect(actionsOn('notify', stack.tables.clients)).toEqual(['dynamodb:GetItem']);
    expect(actionsOn('notify', stack.tables.jobs)).toEqual(['dynamodb:GetItem', 'dynamodb:UpdateItem']);
    expect(actionsOn('notify', stack.queues.jobs)).toEqual([]);
  });

  it('lets deadLetter consume both dead-letter queues, settle jobs and queue callbacks', () => {
    for (const name of deadLetterQueueNames) {
      expect(actionsOn('deadLetter', stack.queues[name]), name).toEqual(
        expect.arrayContaining(['sqs:ReceiveMessage', 'sqs:DeleteMessage', 'sqs:ChangeMessageVisibility']),
      );
    }
    expect(actionsOn('deadLetter', stack.queues.callbacks)).toContain('sqs:SendMessage');
    expect(actionsOn('deadLetter', stack.tables.jobs)).toEqual(['dynamodb:GetItem', 'dynamodb:UpdateItem']);
    expect(actionsOn('deadLetter', stack.tables.clients)).toEqual([]);
  });

  it('lets the sweeper query only the unsettled index, update jobs and its state, read a job only for the index\'s attributes, and send to both work queues: no other action', () => {
    const index = JSON.stringify({ 'Fn::Join': ['', [arnOf(stack.tables.jobs), `/index/${tables.jobs.unsettledIndex.name}`]] });
    const sweeper = permissions('sweeper');
    expect([...(sweeper.get(index) ?? [])]).toEqual(['dynamodb:Query']);
    expect(actionsOn('sweeper', stack.tables.jobs)).toEqual(['dynamodb:GetItem', 'dynamodb:UpdateItem']);
    expect(actionsOn('sweeper', stack.tables.clients)).toEqual([]);
    // Nothing else of DynamoDB, anywhere: no BatchGetItem of whole jobs, no Scan, no PutItem.
    const dynamodb = [...sweeper.values()].flatMap((actions) => [...actions]).filter((action) => action.startsWith('dynamodb:'));
    expect([...new Set(dynamodb)].sort()).toEqual(['dynamodb:GetItem', 'dynamodb:Query', 'dynamodb:UpdateItem']);
    // Its GetItem reads a job's unsettled attributes alone (an entry of a keys-only index), never a request.
    const statements = ofType('AWS::IAM::Policy')
      .filter(([, policy]) => policy.Properties['Roles'].some((r: unknown) => JSON.stringify(r) === JSON.stringify(ref(stack.functions.sweeper.role!))))
      .flatMap(([, policy]) => policy.Properties['PolicyDocument'].Statement as Array<Record<string, any>>);
    const reads = statements.filter((statement) => [statement['Action']].flat().includes('dynamodb:GetItem'));
    expect(reads).toHaveLength(1);
    expect(reads[0]?.['Action']).toBe('dynamodb:GetItem');
    expect(reads[0]?.['Condition']).toEqual({
      'ForAllValues:StringEquals': { 'dynamodb:Attributes': ['pk', 'sk', 'created', ...tables.jobs.unsettledIndex.projected] },
      StringEqualsIfExists: { 'dynamodb:Select': 'SPECIFIC_ATTRIBUTES' },
    });
    expect(actionsOn('sweeper', stack.queues.jobs)).toEqual(['sqs:SendMessage']);
    expect(actionsOn('sweeper', stack.queues.callbacks)).toEqual(['sqs:SendMessage']);
    for (const name of deadLetterQueueNames) expect(actionsOn('sweeper', stack.queues[name]), name).toEqual([]);
    // And nothing beyond its tables, its queues and its own log group.
    const logGroup = { 'Fn::GetAtt': [resources[logicalId(stack.functions.sweeper)]?.Properties['LoggingConfig'].LogGroup.Ref, 'Arn'] };
    const known = [arnOf(stack.tables.jobs), arnOf(stack.queues.jobs), arnOf(stack.queues.callbacks), logGroup].map((resource) => JSON.stringify(resource));
    expect([...sweeper.keys()].filter((resource) => resource !== index && !known.includes(resource))).toEqual([]);
  });

  it('lets the api read and count failed authentications and execute keep flow keys in the limits table, item by item, and no other function touch it', () => {
    expect(actionsOn('api', stack.tables.limits)).toEqual(['dynamodb:GetItem', 'dynamodb:UpdateItem']);
    expect(actionsOn('execute', stack.tables.limits)).toEqual(['dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:UpdateItem']);
    for (const name of functionNames.filter((each) => each !== 'api' && each !== 'execute')) expect(actionsOn(name, stack.tables.limits), name).toEqual([]);
    // Nor anything on an index of it, or on a pattern of names that would take it in.
    const limitsArn = JSON.stringify(arnOf(stack.tables.limits));
    for (const name of functionNames) {
      const other = [...permissions(name).keys()].filter((resource) => resource.includes(logicalId(stack.tables.limits)) && resource !== limitsArn);
      expect(other, name).toEqual([]);
    }
  });

  it('runs the sweeper on an EventBridge schedule that never retries an invocation', () => {
    template.hasResourceProperties('AWS::Events::Rule', {
      ScheduleExpression: `rate(${sweep.everyMinutes} minute${sweep.everyMinutes === 1 ? '' : 's'})`,
      Targets: [Match.objectLike({ Arn: arnOf(stack.functions.sweeper), RetryPolicy: { MaximumRetryAttempts: 0, MaximumEventAgeInSeconds: sweep.everyMinutes * 60 } })],
    });
  });

  it('has Lambda neither retry a sweeper or release run that failed nor start one that waited past its minute', () => {
    const timed = [ref(stack.functions.sweeper), ref(stack.functions.release)].map((r) => JSON.stringify(r));
    const configs = ofType('AWS::Lambda::EventInvokeConfig').filter(([, config]) => timed.includes(JSON.stringify(config.Properties['FunctionName'])));
    expect(configs).toHaveLength(2);
    for (const [name, every] of [['sweeper', sweep.everyMinutes], ['release', release.everyMinutes]] as const) {
      expect(configs.find(([, config]) => JSON.stringify(config.Properties['FunctionName']) === JSON.stringify(ref(stack.functions[name])))?.[1].Properties, name).toMatchObject({
        Qualifier: '$LATEST',
        MaximumRetryAttempts: 0,
        MaximumEventAgeInSeconds: every * 60,
      });
    }
  });

  it('runs the release every minute on an EventBridge schedule that never retries an invocation', () => {
    template.hasResourceProperties('AWS::Events::Rule', {
      ScheduleExpression: 'rate(1 minute)',
      Targets: [Match.objectLike({ Arn: arnOf(stack.functions.release), RetryPolicy: { MaximumRetryAttempts: 0, MaximumEventAgeInSeconds: release.everyMinutes * 60 } })],
    });
    expect(release.everyMinutes).toBe(1);
  });

  it('lets the release query only the due index, mark jobs and save its progress, read only its own state item, and send only to the jobs queue: no other action', () => {
    const index = JSON.stringify({ 'Fn::Join': ['', [arnOf(stack.tables.jobs), `/index/${tables.jobs.dueIndex.name}`]] });
    const granted = permissions('release');
    expect([...(granted.get(index) ?? [])]).toEqual(['dynamodb:Query']);
    expect(actionsOn('release', stack.tables.jobs)).toEqual(['dynamodb:GetItem', 'dynamodb:UpdateItem']);
    expect(actionsOn('release', stack.tables.clients)).toEqual([]);
    expect(actionsOn('release', stack.tables.limits)).toEqual([]);
    const getItem = ofType('AWS::IAM::Policy')
      .filter(([, policy]) => policy.Properties['Roles'].some((r: unknown) => JSON.stringify(r) === JSON.stringify(ref(stack.functions.release.role!))))
      .flatMap(([, policy]) => policy.Properties['PolicyDocument'].Statement as Array<Record<string, unknown>>)
      .filter((statement) => statement['Action'] === 'dynamodb:GetItem');
    expect(getItem).toEqual([expect.objectContaining({ Condition: { 'ForAllValues:StringEquals': { 'dynamodb:LeadingKeys': [tables.jobs.releaseState.pk] } } })]);
    expect(actionsOn('release', stack.queues.jobs)).toEqual(['sqs:SendMessage']);
    for (const name of ['callbacks', ...deadLetterQueueNames] as const) expect(actionsOn('release', stack.queues[name]), name).toEqual([]);
  });

  it('indexes delayed jobs that wait in the store sparsely, by bucket and time, with their timeout alone', () => {
    const due = tables.jobs.dueIndex;
    const indexes = resources[logicalId(stack.tables.jobs)]?.Properties['GlobalSecondaryIndexes'] as Array<Record<string, unknown>>;
    expect(indexes[1]).toEqual({
      IndexName: due.name,
      KeySchema: [
        { AttributeName: 'due', KeyType: 'HASH' },
        { AttributeName: 'next_attempt_at', KeyType: 'RANGE' },
      ],
      Projection: { ProjectionType: 'INCLUDE', NonKeyAttributes: ['timeout_ms'] },
    });
  });

  it('indexes unsettled jobs sparsely, with the attributes the sweeper decides on and no other', () => {
    const index = tables.jobs.unsettledIndex;
    expect([...index.projected].sort()).toEqual(['lastUpdate', 'lease_until', 'next_attempt_at', 'next_notify_at', 'notified', 'notify_lease_until', 'status']);
    template.hasResourceProperties('AWS::DynamoDB::Table', {
      GlobalSecondaryIndexes: [
        {
          IndexName: index.name,
          KeySchema: [
            { AttributeName: index.partitionKey, KeyType: 'HASH' },
            { AttributeName: index.sortKey, KeyType: 'RANGE' },
          ],
          Projection: { ProjectionType: 'INCLUDE', NonKeyAttributes: [...index.projected] },
        },
        Match.anyValue(),
      ],
    });
  });

  it('has no index of a client\'s jobs: its listing entries, items of the table, list them', () => {
    const indexes = resources[logicalId(stack.tables.jobs)]?.Properties['GlobalSecondaryIndexes'] as Array<Record<string, unknown>>;
    expect(indexes.map((index) => index['IndexName'])).toEqual([tables.jobs.unsettledIndex.name, tables.jobs.dueIndex.name]);
  });

  /** The jobs table's index names, synthesized (without bundling: only the table is looked at) with this context. */
  const indexesWith = (context: Record<string, string>, id: string) => {
    const app = new App({ context: { ...cdkJson.context, ...context, 'aws:cdk:bundling-stacks': [] } });
    const synthesized = Template.fromStack(new WaasStack(app, id));
    const jobsTables = Object.values(synthesized.findResources('AWS::DynamoDB::Table')).filter((table) => JSON.stringify(table.Properties.KeySchema).includes(tables.jobs.sortKey));
    expect(jobsTables).toHaveLength(1);
    expect(jobsTables[0]?.Properties.KeySchema).toEqual(resources[logicalId(stack.tables.jobs)]?.Properties['KeySchema']);
    return ((jobsTables[0]?.Properties.GlobalSecondaryIndexes ?? []) as Array<{ IndexName: string }>).map((index) => index.IndexName);
  };

  it('leaves the indexes out when told to, one per deploy: CloudFormation creates or deletes one index per update', () => {
    const { unsettledIndex: unsettled, dueIndex: due } = tables.jobs;
    const noDue = { [withoutDueIndex]: 'true' };
    // An older stack (keys-only unsettled index): its deploys, each one index apart from the last.
    expect(indexesWith({ [withoutUnsettledIndex]: 'true', ...noDue }, 'WaasWithoutIndexes')).toEqual([]);
    expect(indexesWith(noDue, 'WaasWithoutDueIndex')).toEqual([unsettled.name]);
    expect(indexesWith({}, 'WaasWithAll')).toEqual([unsettled.name, due.name]);
    expect(indexesWith({ [withoutUnsettledIndex]: 'true' }, 'WaasWithoutUnsettledIndex')).toEqual([due.name]);
  });

  it('lets each function write only to its own log group', () => {
    for (const name of functionNames) {
      const logGroup: string = resources[logicalId(stack.functions[name])]?.Properties['LoggingConfig'].LogGroup.Ref;
      const logging = [...permissions(name)].filter(([, actions]) => [...actions].some((a) => a.startsWith('logs:')));
      expect(logging.map(([resource]) => resource), name).toEqual([JSON.stringify({ 'Fn::GetAtt': [logGroup, 'Arn'] })]);
    }
  });
});

describe('alarms and outputs', () => {
  it('alarms when a work queue holds a message older than twice the longest retry delay', () => {
    for (const name of workQueueNames) {
      template.hasResourceProperties('AWS::CloudWatch::Alarm', {
        MetricName: 'ApproximateAgeOfOldestMessage',
        Dimensions: [{ Name: 'QueueName', Value: { 'Fn::GetAtt': [logicalId(stack.queues[name]), 'QueueName'] } }],
        Threshold: 1800,
        ComparisonOperator: 'GreaterThanThreshold',
        TreatMissingData: 'notBreaching',
      });
    }
    expect(ofType('AWS::CloudWatch::Alarm').length).toBeGreaterThanOrEqual(4);
  });

  it('outputs the API URL, the table names and the work queue URLs', () => {
    template.hasOutput('ApiUrl', { Value: Match.objectLike({ 'Fn::Join': Match.anyValue() }) });
    expect(JSON.stringify(template.findOutputs('ApiUrl'))).toContain(logicalId(stack.api.api));
    template.hasOutput('JobsTableName', { Value: ref(stack.tables.jobs) });
    template.hasOutput('ClientsTableName', { Value: ref(stack.tables.clients) });
    template.hasOutput('LimitsTableName', { Value: ref(stack.tables.limits) });
    template.hasOutput('JobsQueueUrl', { Value: ref(stack.queues.jobs) });
    template.hasOutput('CallbacksQueueUrl', { Value: ref(stack.queues.callbacks) });
  });
});

describe('schedules', () => {
  it('keys schedules by schedule_id, with a keys-only index of a client\'s by created', () => {
    expect(resources[logicalId(stack.tables.schedules)]?.Properties).toMatchObject({
      KeySchema: [{ AttributeName: 'schedule_id', KeyType: 'HASH' }],
      GlobalSecondaryIndexes: [
        {
          IndexName: tables.schedules.clientIndex.name,
          KeySchema: [
            { AttributeName: 'clientId', KeyType: 'HASH' },
            { AttributeName: 'created', KeyType: 'RANGE' },
          ],
          Projection: { ProjectionType: 'KEYS_ONLY' },
        },
      ],
    });
  });

  it('has EventBridge Scheduler assume a role of its own, for this account alone, that may invoke schedule-run and send to the runs\' dead-letter queue, and nothing else', () => {
    const role = resources[logicalId(stack.schedules.role)];
    expect(role?.Properties['AssumeRolePolicyDocument'].Statement).toEqual([
      { Action: 'sts:AssumeRole', Effect: 'Allow', Principal: { Service: 'scheduler.amazonaws.com' }, Condition: { StringEquals: { 'aws:SourceAccount': { Ref: 'AWS::AccountId' } } } },
    ]);
    const roleRef = JSON.stringify(ref(stack.schedules.role));
    const statements = ofType('AWS::IAM::Policy')
      .filter(([, policy]) => policy.Properties['Roles'].some((r: unknown) => JSON.stringify(r) === roleRef))
      .flatMap(([, policy]) => policy.Properties['PolicyDocument'].Statement);
    expect(statements).toEqual([
      { Action: 'lambda:InvokeFunction', Effect: 'Allow', Resource: arnOf(stack.functions.scheduleRun) },
      { Action: 'sqs:SendMessage', Effect: 'Allow', Resource: arnOf(stack.schedules.deadLetter) },
    ]);
  });

  it("lets the api make and delete only its group's schedules, pass only that role and only to EventBridge Scheduler, and read and write the schedules table", () => {
    const api = permissions('api');
    const schedulesArn = [...api.entries()].find(([resource]) => resource.includes(':schedule/'));
    expect(schedulesArn?.[0]).toContain(`:schedule/${stack.schedules.group.scheduleGroupName}/*`);
    expect([...(schedulesArn?.[1] ?? [])].sort()).toEqual(['scheduler:CreateSchedule', 'scheduler:DeleteSchedule']);
    expect([...(api.get(JSON.stringify(arnOf(stack.schedules.role))) ?? [])]).toEqual(['iam:PassRole']);
    template.hasResourceProperties('AWS::IAM::Policy', {
      PolicyDocument: { Statement: Match.arrayWith([{ Action: 'iam:PassRole', Effect: 'Allow', Resource: arnOf(stack.schedules.role), Condition: { StringEquals: { 'iam:PassedToService': 'scheduler.amazonaws.com' } } }]) },
    });
    expect(actionsOn('api', stack.tables.schedules)).toEqual(['dynamodb:DeleteItem', 'dynamodb:GetItem', 'dynamodb:PutItem']);
    // No other function makes schedules.
    for (const name of functionNames.filter((n) => n !== 'api')) expect([...permissions(name).values()].flatMap((actions) => [...actions]).filter((a) => a.startsWith('scheduler:') || a === 'iam:PassRole')).toEqual([]);
    template.hasResourceProperties('AWS::Lambda::Function', {
      Environment: { Variables: Match.objectLike({ SCHEDULE_GROUP: stack.schedules.group.scheduleGroupName, SCHEDULE_RUN_ARN: arnOf(stack.functions.scheduleRun), SCHEDULE_DEAD_LETTER_ARN: arnOf(stack.schedules.deadLetter) }) },
    });
  });

  it('lets schedule-run read and move on a schedule, submit its job as the api does, and no more', () => {
    expect(actionsOn('scheduleRun', stack.tables.schedules)).toEqual(['dynamodb:GetItem', 'dynamodb:UpdateItem']);
    expect(actionsOn('scheduleRun', stack.tables.jobs)).toEqual(['dynamodb:DeleteItem', 'dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:UpdateItem']);
    expect(actionsOn('scheduleRun', stack.tables.clients)).toEqual(['dynamodb:GetItem']);
    expect(actionsOn('scheduleRun', stack.queues.jobs)).toContain('sqs:SendMessage');
    // Lambda's own retries of a run that threw, then the runs' dead-letter queue.
    const [config] = ofType('AWS::Lambda::EventInvokeConfig').filter(([, c]) => JSON.stringify(c.Properties['FunctionName']) === JSON.stringify(ref(stack.functions.scheduleRun)));
    expect(config?.[1].Properties).toMatchObject({ MaximumRetryAttempts: 2, DestinationConfig: { OnFailure: { Destination: arnOf(stack.schedules.deadLetter) } } });
  });
});
