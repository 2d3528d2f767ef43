/** The functions' metrics as CloudWatch reads them: the core's Telemetry in the embedded metric format. */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { publishCounted } from '../../lambdas/adapters/api-function.ts';
import { metricsTelemetry, WaasMetrics } from '../../lambdas/adapters/wiring.ts';
import { metricNames } from '../../lib/definitions.ts';

let lines: string[];
const write = process.stdout.write.bind(process.stdout);
const warn = console.warn;
const disabled = process.env['POWERTOOLS_METRICS_DISABLED'];

beforeEach(() => {
  delete process.env['POWERTOOLS_METRICS_DISABLED'];
  lines = [];
  process.stdout.write = ((chunk: string | Uint8Array) => (lines.push(String(chunk)), true)) as typeof process.stdout.write;
  console.warn = (...args: unknown[]) => void lines.push(`WARN ${args.join(' ')}`);
});
afterEach(() => {
  process.stdout.write = write;
  console.warn = warn;
  if (disabled !== undefined) process.env['POWERTOOLS_METRICS_DISABLED'] = disabled;
});

const emf = () => lines.flatMap((line) => line.split('\n')).filter((line) => line.includes('"_aws"')).map((line) => JSON.parse(line) as Record<string, any>);

describe('metrics', () => {
  it('counts in Count and times in Milliseconds, under the namespace waas and the service dimension', () => {
    const metrics = new WaasMetrics({ namespace: 'waas', serviceName: 'Waas' });
    const telemetry = metricsTelemetry(metrics);
    telemetry.count(metricNames.jobsCompleted);
    telemetry.duration(metricNames.attemptDuration, 120);
    telemetry.duration(metricNames.attemptDuration, 80);
    metrics.publishStoredMetrics();
    const [line] = emf();
    expect(line).toMatchObject({ service: 'Waas', JobsCompleted: 1, AttemptDuration: [120, 80] });
    expect(line?._aws.CloudWatchMetrics[0]).toMatchObject({
      Namespace: 'waas',
      Dimensions: [['service']],
      Metrics: expect.arrayContaining([{ Name: 'JobsCompleted', Unit: 'Count' }, { Name: 'AttemptDuration', Unit: 'Milliseconds' }]),
    });
  });

  it('where metrics are off, tells nothing and keeps nothing', () => {
    process.env['POWERTOOLS_METRICS_DISABLED'] = 'true';
    const metrics = new WaasMetrics({ namespace: 'waas', serviceName: 'Waas' });
    metricsTelemetry(metrics).count(metricNames.jobsAccepted);
    expect(metrics.hasStoredMetrics()).toBe(false);
  });

  it('the api publishes a request\'s counts once it is answered, and writes nothing for a request that counted nothing', async () => {
    const metrics = new WaasMetrics({ namespace: 'waas', serviceName: 'Waas' });
    const middleware = publishCounted(metrics);
    const request = {} as Parameters<NonNullable<typeof middleware.after>>[0];
    await middleware.after?.(request);
    expect(lines).toEqual([]);
    metricsTelemetry(metrics).count(metricNames.jobsAccepted);
    await middleware.after?.(request);
    expect(emf()).toMatchObject([{ JobsAccepted: 1 }]);
    expect(lines.filter((line) => line.startsWith('WARN'))).toEqual([]);
  });
});
