import { Metrics as PowertoolsMetrics, MetricUnit } from "@aws-lambda-powertools/metrics";
import type { MetricName, Metrics } from "./core/metrics";

/** CloudWatch namespace of every broker metric; the CDK app's alarms read the same one. */
export const METRICS_NAMESPACE = "ActivationBroker";

const UNITS: Readonly<Record<MetricName, (typeof MetricUnit)[keyof typeof MetricUnit]>> = {
  Vends: MetricUnit.Count,
  Rotations: MetricUnit.Count,
  StandbyRefills: MetricUnit.Count,
  RotationFailures: MetricUnit.Count,
  LeaseWaits: MetricUnit.Count,
  Throttles: MetricUnit.Count,
  BudgetRefusals: MetricUnit.Count,
  SlotsLeft: MetricUnit.Count,
  ManagedNodes: MetricUnit.Count,
  TierHeadroomPercent: MetricUnit.Percent,
  JanitorDeletions: MetricUnit.Count,
  SlotTheftDetected: MetricUnit.Count,
  RefusedPairs: MetricUnit.Count,
};

/**
 * The core's Metrics port on Powertools Metrics: embedded metric format on stdout, which Lambda
 * (and the CloudWatch agent in standalone mode) turns into metrics without a PutMetricData call.
 * A metric with dimensions is flushed on its own, so one pool's value never lands under another's.
 * Names and dimension values are the broker's own (metric names, pool names): never a code.
 */
export function createMetrics(service = "activation-broker"): { metrics: Metrics; flush(): void } {
  const powertools = new PowertoolsMetrics({ namespace: METRICS_NAMESPACE, serviceName: service });
  const emit = (name: MetricName, value: number, dimensions?: Readonly<Record<string, string>>) => {
    if (dimensions && Object.keys(dimensions).length > 0) {
      const single = powertools.singleMetric();
      for (const [key, dimension] of Object.entries(dimensions)) single.addDimension(key, dimension);
      // A single-metric instance publishes inside addMetric; publishing again would emit an empty
      // buffer and Powertools' "No application metrics to publish" warning.
      single.addMetric(name, UNITS[name], value);
    } else {
      powertools.addMetric(name, UNITS[name], value);
    }
  };
  return {
    metrics: {
      count: (name, value = 1, dimensions) => emit(name, value, dimensions),
      gauge: (name, value, dimensions) => emit(name, value, dimensions),
    },
    flush: () => {
      if (powertools.hasStoredMetrics()) powertools.publishStoredMetrics();
    },
  };
}
