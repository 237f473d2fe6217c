import { Match, Template } from "aws-cdk-lib/assertions";
import { beforeAll, describe, it } from "vitest";
import { SLOT_THEFT_METRIC } from "../../src/core/slot-theft";
import { synthBrokerApp } from "./support";

/**
 * The slot-theft alarm: the broker counts SlotTheftDetected per pool (dimension Pool), so the alarm
 * adds up every configured pool's series; an alarm on the metric without the Pool dimension would
 * watch a series nobody writes.
 */
describe("slot-theft alarm", () => {
  let template: Template;
  beforeAll(() => {
    template = Template.fromStack(
      synthBrokerApp({ Pools: { web: {}, db: { registrationLimit: 10 } } }).stacks.broker,
    );
  });

  it("fires on any theft in 5 minutes, in any pool, and notifies the alarm topic", () => {
    template.hasResourceProperties("AWS::CloudWatch::Alarm", {
      ComparisonOperator: "GreaterThanThreshold",
      Threshold: 0,
      TreatMissingData: "notBreaching",
      AlarmActions: [{ Ref: Match.stringLikeRegexp("AlarmTopic") }],
      Metrics: Match.arrayWith([
        Match.objectLike({ Expression: Match.stringLikeRegexp("^SUM\\(\\[theft0,theft1(,theft2)?\\]\\)$") }),
        ...["web", "db"].map((pool) =>
          Match.objectLike({
            MetricStat: Match.objectLike({
              Metric: Match.objectLike({
                MetricName: SLOT_THEFT_METRIC,
                Namespace: "ActivationBroker",
                Dimensions: Match.arrayWith([
                  { Name: "Pool", Value: pool },
                  { Name: "service", Value: "activation-broker" },
                ]),
              }),
              Stat: "Sum",
              Period: 300,
            }),
          }),
        ),
      ]),
    });
  });
});
