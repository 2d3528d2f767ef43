/**
 * What an operator runs on: bounded concurrency, alarms that reach someone through one topic
 * (each with its runbook entry in the README), a dashboard of waas's metrics, and tracing behind
 * a flag. Synthesized without bundling: only the template's shape matters here.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { App, Stack, type CfnElement } from 'aws-cdk-lib';
import { Annotations, Match, Template } from 'aws-cdk-lib/assertions';
import type { IConstruct } from 'constructs';
import { beforeAll, describe, expect, it } from 'vitest';
import { runbook } from '../../lib/constructs/alarms.ts';
import { functions, metricNames, metricsNamespace, queues, type FunctionName, type QueueName } from '../../lib/definitions.ts';
import { WaasStack } from '../../lib/waas-stack.ts';

const projectRoot = join(import.meta.dirname, '..', '..');
const cdkJson = JSON.parse(readFileSync(join(projectRoot, 'cdk.json'), 'utf8')) as { context: Record<string, unknown> };
const readme = readFileSync(join(projectRoot, 'README.md'), 'utf8');

type Resource = { Type: string; Properties: Record<string, any> };

function synth(context: Record<string, unknown> = {}) {
  const app = new App({ context: { ...cdkJson.context, 'aws:cdk:bundling-stacks': [], ...context }, builtinCloudFormationValidation: false });
  const stack = new WaasStack(app, 'Waas');
  const template = Template.fromStack(stack);
  const resources = template.toJSON()['Resources'] as Record<string, Resource>;
  const logicalId = (construct: IConstruct) => Stack.of(construct).getLogicalId(construct.node.defaultChild as CfnElement);
  const ofType = (type: string) => Object.entries(resources).filter(([, r]) => r.Type === type);
  return { stack, template, resources, logicalId, ofType };
}

let base: ReturnType<typeof synth>;
beforeAll(() => {
  base = synth();
});

const functionNames = Object.keys(functions) as FunctionName[];

describe('bounded concurrency', () => {
  it('reserves the api function 100 of the account\'s concurrency, as many as the stage\'s burst, and no other function any', () => {
    const { resources, logicalId, stack } = base;
    for (const name of functionNames) {
      const reserved = resources[logicalId(stack.functions[name])]?.Properties['ReservedConcurrentExecutions'];
      expect(reserved, name).toBe(name === 'api' ? 100 : undefined);
    }
  });

  it('takes each work queue\'s maximum concurrency, and the api\'s reservation, from context', () => {
    const { template, resources, logicalId, stack } = synth({ jobsMaxConcurrency: '300', callbacksMaxConcurrency: '12', apiReservedConcurrency: '0' });
    for (const [name, expected] of [['jobs', 300], ['callbacks', 12], ['jobsDeadLetter', 2], ['callbacksDeadLetter', 2]] as Array<[QueueName, number]>) {
      template.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
        EventSourceArn: { 'Fn::GetAtt': [logicalId(stack.queues[name]), 'Arn'] },
        ScalingConfig: { MaximumConcurrency: expected },
      });
    }
    expect(resources[logicalId(stack.functions.api)]?.Properties['ReservedConcurrentExecutions']).toBeUndefined();
  });

  it('keeps the queues\' consumers within what the account has left after the api\'s reservation', () => {
    const consumers = (Object.keys(queues) as QueueName[]).reduce((sum, name) => sum + queues[name].maxConcurrency, 0);
    // The sweeper runs one at a time; Lambda keeps 100 unreserved.
    expect(100 + consumers + 1).toBeLessThanOrEqual(1000 - 100);
  });

  it('warns when the api\'s reservation is below the burst the stage lets through', () => {
    const app = new App({ context: { 'aws:cdk:bundling-stacks': [], apiReservedConcurrency: '20', apiThrottleBurst: '100' }, builtinCloudFormationValidation: false });
    const stack = new WaasStack(app, 'Waas');
    const warnings = Annotations.fromStack(stack).findWarning('*', Match.stringLikeRegexp('apiReservedConcurrency \\(20\\) is below apiThrottleBurst \\(100\\)'));
    expect(warnings).toHaveLength(1);
    expect(Annotations.fromStack(base.stack).findWarning('*', Match.stringLikeRegexp('apiReservedConcurrency'))).toHaveLength(0);
  });
});

describe('alarms', () => {
  it('sends every alarm, and its return to OK, to the one alarm topic', () => {
    const { ofType, stack, logicalId } = base;
    const alarms = ofType('AWS::CloudWatch::Alarm');
    expect(alarms.length).toBeGreaterThanOrEqual(14);
    const topic = { Ref: logicalId(stack.alarms.topic) };
    for (const [id, alarm] of alarms) {
      expect(alarm.Properties['AlarmActions'], id).toEqual([topic]);
      expect(alarm.Properties['OKActions'], id).toEqual([topic]);
    }
  });

  it('names in each alarm a runbook entry that the README has', () => {
    const { ofType } = base;
    const named = new Set<string>();
    for (const [id, alarm] of ofType('AWS::CloudWatch::Alarm')) {
      const entry = /Runbook: README, "([a-z0-9-]+)"/.exec(alarm.Properties['AlarmDescription'])?.[1];
      expect(entry, id).toBeDefined();
      named.add(entry ?? '');
    }
    expect([...named].sort()).toEqual(Object.values(runbook).sort());
    for (const entry of named) expect(readme, entry).toMatch(new RegExp(`^#### \`${entry}\``, 'm'));
  });

  it('counts what reaches a dead-letter queue, which its consumer drains, by what SQS hands out of it', () => {
    const { template, stack, logicalId } = base;
    for (const name of ['jobsDeadLetter', 'callbacksDeadLetter'] as const) {
      template.hasResourceProperties('AWS::CloudWatch::Alarm', {
        Namespace: 'AWS/SQS',
        MetricName: 'NumberOfMessagesReceived',
        Dimensions: [{ Name: 'QueueName', Value: { 'Fn::GetAtt': [logicalId(stack.queues[name]), 'QueueName'] } }],
        Statistic: 'Sum',
        Threshold: 0,
        ComparisonOperator: 'GreaterThanThreshold',
      });
      // And a consumer that does not drain it at all.
      template.hasResourceProperties('AWS::CloudWatch::Alarm', {
        MetricName: 'ApproximateAgeOfOldestMessage',
        Dimensions: [{ Name: 'QueueName', Value: { 'Fn::GetAtt': [logicalId(stack.queues[name]), 'QueueName'] } }],
      });
    }
  });

  it('alarms on every function\'s errors, the api\'s throttles, the API\'s 5xx rate, failing storage and lost messages', () => {
    const { template, stack, logicalId } = base;
    for (const name of functionNames) {
      template.hasResourceProperties('AWS::CloudWatch::Alarm', {
        Namespace: 'AWS/Lambda',
        MetricName: 'Errors',
        Dimensions: [{ Name: 'FunctionName', Value: { Ref: logicalId(stack.functions[name]) } }],
      });
    }
    template.hasResourceProperties('AWS::CloudWatch::Alarm', { Namespace: 'AWS/Lambda', MetricName: 'Throttles', Dimensions: [{ Name: 'FunctionName', Value: { Ref: logicalId(stack.functions.api) } }] });
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      Metrics: Match.arrayWith([Match.objectLike({ Expression: 'IF(requests >= 20, 100 * errors / requests, 0)' })]),
    });
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      Namespace: metricsNamespace,
      MetricName: metricNames.messagesFailed,
      Dimensions: [{ Name: 'service', Value: 'Waas' }],
    });
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      Metrics: Match.arrayWith([
        Match.objectLike({ MetricStat: Match.objectLike({ Metric: Match.objectLike({ MetricName: metricNames.sweptJobs, Namespace: metricsNamespace }) }) }),
      ]),
    });
  });

  it('subscribes no one by default, and the address context gives when given', () => {
    expect(base.ofType('AWS::SNS::Subscription')).toHaveLength(0);
    const { template } = synth({ alarmEmail: 'ops@example.com' });
    template.hasResourceProperties('AWS::SNS::Subscription', { Protocol: 'email', Endpoint: 'ops@example.com' });
  });

  it('accepts only TLS on the topic, and outputs its ARN for other subscribers', () => {
    const { template, stack, logicalId } = base;
    template.hasResourceProperties('AWS::SNS::TopicPolicy', {
      PolicyDocument: { Statement: Match.arrayWith([Match.objectLike({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } })]) },
    });
    template.hasOutput('AlarmTopicArn', { Value: { Ref: logicalId(stack.alarms.topic) } });
  });
});

describe('the dashboard', () => {
  const body = () => JSON.stringify(base.ofType('AWS::CloudWatch::Dashboard')[0]?.[1].Properties['DashboardBody']);

  it('shows every metric waas publishes, under the stack\'s service', () => {
    expect(base.ofType('AWS::CloudWatch::Dashboard')).toHaveLength(1);
    for (const name of Object.values(metricNames).filter((name) => name !== metricNames.messagesReceived)) {
      expect(body(), name).toContain(`\\"${metricsNamespace}\\",\\"${name}\\",\\"service\\",\\"Waas\\"`);
    }
  });

  it('shows queue depth and age, dead letters received, and each function\'s errors, throttles, duration and concurrency', () => {
    for (const metric of ['ApproximateNumberOfMessagesVisible', 'ApproximateNumberOfMessagesNotVisible', 'ApproximateAgeOfOldestMessage', 'NumberOfMessagesReceived']) {
      expect(body(), metric).toContain(`\\"AWS/SQS\\",\\"${metric}\\"`);
    }
    for (const metric of ['Errors', 'Throttles', 'Duration', 'ConcurrentExecutions']) {
      const shown = body().split(`\\"AWS/Lambda\\",\\"${metric}\\"`).length - 1;
      expect(shown, metric).toBe(functionNames.length);
    }
    expect(body()).toContain('\\"AWS/ApiGateway\\",\\"5xx\\"');
  });
});

describe('tracing', () => {
  it('is off by default: no active tracing, and the functions do not load the Tracer', () => {
    const { resources, ofType } = base;
    for (const [id, fn] of ofType('AWS::Lambda::Function')) {
      expect(fn.Properties['TracingConfig']?.Mode ?? 'PassThrough', id).not.toBe('Active');
      expect(fn.Properties['Environment'].Variables['POWERTOOLS_TRACE_ENABLED'], id).toBe('false');
    }
    expect(JSON.stringify(resources)).not.toContain('xray:PutTraceSegments');
  });

  it('turns on with `-c tracing=true`: active tracing, Powertools Tracer, and the right to send segments', () => {
    const { ofType, resources } = synth({ tracing: 'true' });
    const fns = ofType('AWS::Lambda::Function');
    expect(fns).toHaveLength(functionNames.length);
    for (const [id, fn] of fns) {
      expect(fn.Properties['TracingConfig'], id).toEqual({ Mode: 'Active' });
      expect(fn.Properties['Environment'].Variables['POWERTOOLS_TRACE_ENABLED'], id).toBe('true');
    }
    expect(JSON.stringify(resources)).toContain('xray:PutTraceSegments');
  });
});
