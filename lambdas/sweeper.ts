/**
 * Lambda, on a schedule: re-queues work that lost its message — a job or callback that nothing
 * has touched well past the moment it was due — and counts what it found (SweptJobs,
 * SweptCallbacks), so a stall is seen, not silent.
 */
import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import { sweep } from '../lib/definitions.ts';
import { logger, services } from './adapters/wiring.ts';
import { requeueUnsettled, type SweepReport } from './core/sweep.ts';

const metrics = new Metrics({ namespace: 'waas', serviceName: 'waas' });

export async function handler(): Promise<SweepReport> {
  const report = await requeueUnsettled(services(), { idleMs: sweep.idleMs });
  metrics.addMetric('SweptJobs', MetricUnit.Count, report.jobs);
  metrics.addMetric('SweptCallbacks', MetricUnit.Count, report.callbacks);
  metrics.publishStoredMetrics();
  if (report.jobs + report.callbacks > 0) logger.warn('re-queued work that had lost its message', { ...report });
  return report;
}
