/** Lambda: the HTTP API (API Gateway HTTP API, payload format 2.0). */
import { apiFunction } from './adapters/api-function.ts';
import { scheduleTimers } from './adapters/scheduler.ts';
import { services, submitDeps } from './adapters/wiring.ts';
import type { ApiDeps } from './core/api.ts';

let deps: ApiDeps | undefined;

function apiDeps(): ApiDeps {
  const s = services();
  deps ??= { ...submitDeps(s), auth: s.auth, limiter: s.limiter, schedules: s.schedules, timers: scheduleTimers(s.config.timers) };
  return deps;
}

export const handler = apiFunction(apiDeps);
