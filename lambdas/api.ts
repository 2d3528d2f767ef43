/** Lambda: the HTTP API (API Gateway HTTP API, payload format 2.0). */
import { apiFunction } from './adapters/api-function.ts';
import { refusalAtSubmit, services } from './adapters/wiring.ts';
import type { ApiDeps } from './core/api.ts';

let deps: ApiDeps | undefined;

function apiDeps(): ApiDeps {
  const s = services();
  deps ??= {
    jobs: s.jobs,
    queue: s.queue,
    clock: s.clock,
    auth: s.auth,
    limiter: s.limiter,
    retentionDays: s.config.retentionDays,
    indexEveryJob: s.config.indexEveryJob,
    refuse: refusalAtSubmit(s.egress),
    telemetry: s.telemetry,
    schedules: s.schedules,
    timers: s.timers,
  };
  return deps;
}

export const handler = apiFunction(apiDeps);
