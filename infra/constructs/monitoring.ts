import { Aws, Duration } from "aws-cdk-lib";
import type { IRestApi } from "aws-cdk-lib/aws-apigateway";
import { ComparisonOperator, MathExpression, Metric, TreatMissingData } from "aws-cdk-lib/aws-cloudwatch";
import type { IFunction } from "aws-cdk-lib/aws-lambda";
import { type ITopic, Topic } from "aws-cdk-lib/aws-sns";
import type { Key } from "aws-cdk-lib/aws-kms";
import { PolicyStatement, ServicePrincipal } from "aws-cdk-lib/aws-iam";
import { DefaultDashboardFactory, MonitoringFacade, SnsAlarmActionStrategy } from "cdk-monitoring-constructs";
import { Construct } from "constructs";
import { SLOT_THEFT_METRIC } from "../../src/core/slot-theft";
import { METRICS_NAMESPACE } from "../../src/metrics";

export interface BrokerMonitoringProps {
  readonly api: IRestApi;
  readonly stageName: string;
  readonly janitorFunction: IFunction;
  /** Pool names: "slots running low" watches each of them. */
  readonly pools: readonly string[];
  /** Prefix of the alarm and dashboard names. */
  readonly namePrefix: string;
  /** Where alarms notify. @default a topic created here (subscribe to it), encrypted with `topicKey` */
  readonly alarmTopic?: ITopic;
  /** Encrypts the created topic; CloudWatch is allowed to use it for this account's alarms. */
  readonly topicKey: Key;
  /** A pool that keeps at most this many slots for a whole hour is stuck. @default 0 */
  readonly slotsLowThreshold?: number;
  /** Alarm when the standard tier's headroom falls below this percentage. @default 10 */
  readonly tierHeadroomPercent?: number;
}

/** Dimensions Powertools Metrics adds to every broker metric (service = its serviceName). */
const SERVICE = { service: "activation-broker" };

/**
 * Alarms and a dashboard, built with cdk-monitoring-constructs: the API's 5xx, failed rotations,
 * pools that stay out of slots, slot theft, the standard tier's headroom, and janitor failures. The metrics
 * carry counts and pool names only, never a code.
 */
export class BrokerMonitoring extends Construct {
  readonly facade: MonitoringFacade;
  readonly alarmTopic: ITopic;

  constructor(scope: Construct, id: string, props: BrokerMonitoringProps) {
    super(scope, id);
    this.alarmTopic = props.alarmTopic ?? this.createTopic(props.topicKey);
    this.facade = new MonitoringFacade(this, "Facade", {
      alarmFactoryDefaults: {
        alarmNamePrefix: props.namePrefix,
        actionsEnabled: true,
        datapointsToAlarm: 1,
        // Every alarm notifies (CT.CLOUDWATCH.PR.1): an alarm nobody hears is only a dashboard.
        action: new SnsAlarmActionStrategy({ onAlarmTopic: this.alarmTopic }),
      },
      metricFactoryDefaults: { namespace: METRICS_NAMESPACE },
      dashboardFactory: new DefaultDashboardFactory(this, "Dashboards", {
        dashboardNamePrefix: props.namePrefix,
        createDashboard: true,
        createSummaryDashboard: false,
        createAlarmDashboard: false,
      }),
    });

    this.facade.monitorApiGateway({
      api: props.api,
      apiStage: props.stageName,
      alarmFriendlyName: "Api",
      add5XXFaultCountAlarm: { Critical: { maxErrorCount: 0 } },
    });

    const metric = (metricName: string, statistic: string, period: Duration, dimensions = {}) =>
      new Metric({
        namespace: METRICS_NAMESPACE,
        metricName,
        statistic,
        period,
        dimensionsMap: { ...SERVICE, ...dimensions },
      });
    const hour = Duration.hours(1);
    // The lowest of the pools' hourly maxima: some pool never had more slots than this all hour.
    const slotsLeft = new MathExpression({
      label: "Slots left (the most stuck pool)",
      expression: props.pools.length > 0 ? `MIN([${props.pools.map((_, i) => `p${i}`).join(",")}])` : "0",
      usingMetrics: Object.fromEntries(
        props.pools.map((pool, i) => [`p${i}`, metric("SlotsLeft", "Maximum", hour, { Pool: pool })]),
      ),
      period: hour,
    });

    // Every pool's count, added up: the broker counts per pool (dimension Pool), and CloudWatch
    // sees each pool's series as a metric of its own. `id` prefixes the series' ids: expressions
    // shown on one dashboard graph must not share one.
    const perPoolSum = (metricName: string, id: string, label: string) =>
      new MathExpression({
        label,
        expression:
          props.pools.length > 0 ? `SUM([${props.pools.map((_, i) => `${id}${i}`).join(",")}])` : "0",
        usingMetrics: Object.fromEntries(
          props.pools.map((pool, i) => [
            `${id}${i}`,
            metric(metricName, "Sum", Duration.minutes(5), { Pool: pool }),
          ]),
        ),
        period: Duration.minutes(5),
      });

    this.facade.monitorCustom({
      alarmFriendlyName: "Broker",
      humanReadableName: "Activation broker",
      metricGroups: [
        {
          title: "Vends and rotations",
          metrics: [
            metric("Vends", "Sum", Duration.minutes(5)),
            metric("Rotations", "Sum", Duration.minutes(5)),
            metric("StandbyRefills", "Sum", Duration.minutes(5)),
            {
              metric: metric("RotationFailures", "Sum", Duration.minutes(5)),
              alarmFriendlyName: "RotationFailures",
              addAlarm: {
                Critical: {
                  threshold: 0,
                  comparisonOperator: ComparisonOperator.GREATER_THAN_THRESHOLD,
                  treatMissingDataOverride: TreatMissingData.NOT_BREACHING,
                },
              },
            },
          ],
        },
        {
          title: "Refusals",
          metrics: [
            metric("LeaseWaits", "Sum", Duration.minutes(5)),
            metric("Throttles", "Sum", Duration.minutes(5)),
            metric("BudgetRefusals", "Sum", Duration.minutes(5)),
          ],
        },
        {
          title: "Slots",
          metrics: [
            {
              metric: slotsLeft,
              alarmFriendlyName: "SlotsLow",
              addAlarm: {
                Warning: {
                  threshold: props.slotsLowThreshold ?? 0,
                  comparisonOperator: ComparisonOperator.LESS_THAN_OR_EQUAL_TO_THRESHOLD,
                  treatMissingDataOverride: TreatMissingData.NOT_BREACHING,
                },
              },
            },
          ],
        },
        {
          title: "Security",
          metrics: [
            {
              // Any theft at all: someone registered more nodes with a pair than it was meant for.
              metric: perPoolSum(SLOT_THEFT_METRIC, "theft", "Slot thefts (all pools)"),
              alarmFriendlyName: "SlotTheft",
              addAlarm: {
                Critical: {
                  threshold: 0,
                  comparisonOperator: ComparisonOperator.GREATER_THAN_THRESHOLD,
                  treatMissingDataOverride: TreatMissingData.NOT_BREACHING,
                },
              },
            },
            perPoolSum("RefusedPairs", "refused", "Refused pairs healed (all pools)"),
          ],
        },
        {
          title: "Managed nodes (standard tier: 1,000 per account and Region)",
          metrics: [
            metric("ManagedNodes", "Maximum", hour),
            {
              metric: metric("TierHeadroomPercent", "Minimum", hour),
              alarmFriendlyName: "TierHeadroom",
              addAlarm: {
                Warning: {
                  threshold: props.tierHeadroomPercent ?? 10,
                  comparisonOperator: ComparisonOperator.LESS_THAN_THRESHOLD,
                  treatMissingDataOverride: TreatMissingData.NOT_BREACHING,
                },
              },
            },
          ],
        },
      ],
    });

    this.facade.monitorLambdaFunction({
      lambdaFunction: props.janitorFunction,
      alarmFriendlyName: "Janitor",
      humanReadableName: "Janitor",
      addFaultCountAlarm: { Critical: { maxErrorCount: 0 } },
    });
  }

  private createTopic(key: Key): Topic {
    key.addToResourcePolicy(
      new PolicyStatement({
        sid: "AllowCloudWatchAlarmsToPublishEncrypted",
        principals: [new ServicePrincipal("cloudwatch.amazonaws.com")],
        actions: ["kms:Decrypt", "kms:GenerateDataKey*"],
        resources: ["*"],
        conditions: { StringEquals: { "aws:SourceAccount": Aws.ACCOUNT_ID } },
      }),
    );
    return new Topic(this, "AlarmTopic", {
      displayName: "Activation broker alarms",
      masterKey: key,
      enforceSSL: true,
    });
  }
}
