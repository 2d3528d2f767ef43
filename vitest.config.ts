import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    // The TypeScript client's tests too (a workspace: clients/typescript).
    include: ['test/**/*.test.ts', 'clients/typescript/test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // End-to-end files each start their own local stack; two cores run two at a time.
    maxWorkers: 2,
    reporters: ['default'],
    // The AWS SDK warns once per process that Node 20 support ends; the Lambda runtime is newer.
    // CloudWatch's metric lines are asserted where they matter, not printed by every test.
    env: { AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true', POWERTOOLS_METRICS_DISABLED: 'true' },
  },
});
