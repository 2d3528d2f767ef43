import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // End-to-end files each start their own local stack; two cores run two at a time.
    maxWorkers: 2,
    reporters: ['default'],
  },
});
