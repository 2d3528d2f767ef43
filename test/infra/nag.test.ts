/**
 * cdk-nag's AWS Solutions rules over the Waas stack. cdk-nag 3 is a CDK validation plugin, not an
 * aspect: its findings are a report (not annotations), and `Validations.of(x).acknowledge()` is how
 * the stack accepts one, with a reason. `bin/waas.ts` registers the same pack, so `cdk synth` fails
 * on a finding too; here the report is read directly to name every finding in a failure.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { App, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { beforeAll, describe, expect, it } from 'vitest';
import { WaasStack } from '../../lib/waas-stack.ts';

const projectRoot = join(import.meta.dirname, '..', '..');
const cdkJson = JSON.parse(readFileSync(join(projectRoot, 'cdk.json'), 'utf8')) as { context: Record<string, unknown> };

let app: App;
let findings: Array<{ rule: string; severity: string; paths: Array<string | undefined> }>;

beforeAll(() => {
  // The rules read the construct tree, not the bundles nor CloudFormation's own checks: both are
  // skipped here to save seconds (stack.test.ts runs them).
  app = new App({
    context: { ...cdkJson.context, 'aws:cdk:bundling-stacks': [] },
    builtinCloudFormationValidation: false,
  });
  new WaasStack(app, 'Waas');
  app.synth();
  const report = new AwsSolutionsChecks(app, { verbose: true }).validateScope(app);
  findings = report.violations.map((v) => ({
    rule: v.ruleName,
    severity: v.severity ?? 'unknown',
    paths: v.violatingResources.map((r) => r.constructPath),
  }));
});

/** Every acknowledgment in the app, as rule id → reason. */
function acknowledgments(): Array<{ rule: string; reason: string; path: string }> {
  return app.node.findAll().flatMap((construct) =>
    construct.node.metadata
      .filter((entry) => entry.type === Validations.ACKNOWLEDGED_RULES_METADATA_KEY)
      .flatMap((entry) =>
        Object.entries(entry.data as Record<string, string>).map(([rule, reason]) => ({
          rule: rule.replace(/^annotation::/i, ''),
          reason,
          path: construct.node.path,
        })),
      ),
  );
}

describe('cdk-nag AWS Solutions checks', () => {
  it('leaves no unacknowledged error', () => {
    expect(findings.filter((f) => f.severity === 'error')).toEqual([]);
  });

  it('leaves no unacknowledged warning', () => {
    expect(findings.filter((f) => f.severity !== 'error')).toEqual([]);
  });

  it('acknowledges only the missing API Gateway authorizer, on the API, and the alarm topic\'s AWS-managed encryption, each with its reason', () => {
    const acknowledged = acknowledgments();
    expect(acknowledged.map(({ rule, path }) => ({ rule, path }))).toEqual([
      { rule: 'AwsSolutions-APIG4', path: 'Waas/Api/HttpApi' },
      { rule: 'AwsSolutions-SNS2', path: 'Waas/Alarms/Topic' },
    ]);
    expect(acknowledged[0]?.reason).toMatch(/verify_token/);
    expect(acknowledged[1]?.reason).toMatch(/no job data nor credentials/);
  });
});
