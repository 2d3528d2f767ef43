/**
 * One operation's counts as bench/meter.ts reports them, every count 0 but those given: what the
 * bench's usage and cost tests build their snapshots from.
 */
import type { OperationStats } from '../../bench/meter.ts';

export const operationStats = (service: OperationStats['service'], operation: string, detail: string, caller: string, counts: Partial<OperationStats> = {}): OperationStats => ({
  service,
  operation,
  detail,
  caller,
  calls: 0,
  failures: 0,
  errors: {},
  attempts: 0,
  requestBytes: 0,
  responseBytes: 0,
  capacityUnits: 0,
  estimatedUnits: 0,
  billedRequests: 0,
  messages: 0,
  returned: 0,
  ...counts,
});
