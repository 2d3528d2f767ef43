/** Per-deployment settings from CDK context (`-c key=value` or cdk.json) and their defaults. */
import * as definitions from '../../lib/definitions.ts';
import { App } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { RetentionDays } from 'aws-cdk-lib/aws-logs';
import { describe, expect, it } from 'vitest';
import { defaultRetentionDays, env } from '../../lib/definitions.ts';
import { readSettings } from '../../lib/settings.ts';
import { WaasStack } from '../../lib/waas-stack.ts';

describe('settings', () => {
  it('defaults to the retention of definitions, a 100/100 throttle, a month of logs, the local stack\'s concurrency, 100 reserved for the api, no email and no tracing', () => {
    expect(readSettings(new App())).toEqual({
      retentionDays: defaultRetentionDays,
      throttle: { burstLimit: 100, rateLimit: 100 },
      logRetention: RetentionDays.ONE_MONTH,
      maxConcurrency: { jobs: definitions.queues.jobs.maxConcurrency, callbacks: definitions.queues.callbacks.maxConcurrency },
      apiReservedConcurrency: 100,
      alarmEmail: undefined,
      tracing: false,
    });
  });

  it('reads the operating settings, as strings from the command line', () => {
    const app = new App({ context: { jobsMaxConcurrency: '200', callbacksMaxConcurrency: 10, apiReservedConcurrency: '0', alarmEmail: 'ops@example.com', tracing: 'true' } });
    expect(readSettings(app)).toMatchObject({ maxConcurrency: { jobs: 200, callbacks: 10 }, apiReservedConcurrency: 0, alarmEmail: 'ops@example.com', tracing: true });
  });

  it.each([
    ['jobsMaxConcurrency', '1', /jobsMaxConcurrency must be an integer from 2 to 1000/],
    ['callbacksMaxConcurrency', '1001', /callbacksMaxConcurrency must be an integer from 2 to 1000/],
    ['apiReservedConcurrency', '-1', /apiReservedConcurrency must be an integer from 0/],
    ['alarmEmail', 'ops', /alarmEmail must be an email address/],
    ['tracing', 'yes', /tracing must be true or false/],
  ])('refuses %s=%s, naming the rule', (key, value, rule) => {
    expect(() => readSettings(new App({ context: { [key]: value } }))).toThrow(rule);
  });

  it('reads numbers given on the command line as strings', () => {
    const app = new App({ context: { retentionDays: '7', apiThrottleBurst: '50', apiThrottleRate: 20 } });
    expect(readSettings(app)).toMatchObject({ retentionDays: 7, throttle: { burstLimit: 50, rateLimit: 20 } });
  });

  it.each([['0'], ['-3'], ['1.5'], ['seven']])('refuses retentionDays=%s instead of deploying it', (value) => {
    expect(() => readSettings(new App({ context: { retentionDays: value } }))).toThrow(/retentionDays/);
  });

  it('carries the context into the functions and the API stage', () => {
    // Neither bundling nor CloudFormation's own checks: only two settings matter here.
    const app = new App({
      context: { retentionDays: '7', apiThrottleBurst: '50', apiThrottleRate: '20', 'aws:cdk:bundling-stacks': [] },
      builtinCloudFormationValidation: false,
    });
    const template = Template.fromStack(new WaasStack(app, 'Waas'));
    const functions = Object.values(template.findResources('AWS::Lambda::Function'));
    expect(functions).toHaveLength(Object.keys(definitions.functions).length);
    for (const fn of functions) expect(fn['Properties'].Environment.Variables[env.retentionDays]).toBe('7');
    template.hasResourceProperties('AWS::ApiGatewayV2::Stage', {
      DefaultRouteSettings: { ThrottlingBurstLimit: 50, ThrottlingRateLimit: 20 },
    });
  });
});
