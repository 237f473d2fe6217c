/**
 * The metrics port: counters and gauges the adapters publish in CloudWatch embedded metric
 * format. Names and dimensions only carry pool names and counts, never a code (I6).
 */
export interface Metrics {
  count(name: MetricName, value?: number, dimensions?: Readonly<Record<string, string>>): void;
  gauge(name: MetricName, value: number, dimensions?: Readonly<Record<string, string>>): void;
}

export type MetricName =
  | "Vends"
  | "Rotations"
  | "StandbyRefills"
  | "RotationFailures"
  | "LeaseWaits"
  | "Throttles"
  | "BudgetRefusals"
  | "SlotsLeft"
  | "ManagedNodes"
  | "TierHeadroomPercent"
  | "JanitorDeletions"
  | "SlotTheftDetected"
  | "RefusedPairs";

export const noMetrics: Metrics = { count: () => {}, gauge: () => {} };
