/**
 * The local deployment `npm start` runs, as `activation-broker --local` finds it: the names the
 * local stack creates in the emulated AWS, and a record of the running `npm start` (where its
 * emulated AWS listens, the settings its broker runs with) in one small file per user in the
 * temporary directory, written once the stack is up and removed when it stops.
 */
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir, userInfo } from "node:os";
import { join } from "node:path";

export const LOCAL_TABLE_NAME = "activation-broker-local";
export const LOCAL_IAM_ROLE = "SSMServiceRole";
export const LOCAL_HYBRID_NODES_ROLE = "AmazonEKSHybridNodesRole";
export const LOCAL_REGION = "us-east-1";
export const LOCAL_DEPLOYMENT = "local";
/** The emulated AWS's port when EMULATOR_PORT is unset. */
export const LOCAL_EMULATOR_PORT = 4566;

/** What the emulated AWS provides: the settings of a plain `npm start`. */
export const LOCAL_ENV: Readonly<Record<string, string>> = {
  AWS_REGION: LOCAL_REGION,
  BROKER_TABLE_NAME: LOCAL_TABLE_NAME,
  BROKER_DEFAULT_IAM_ROLE: LOCAL_IAM_ROLE,
  BROKER_HYBRID_NODES_ROLE: LOCAL_HYBRID_NODES_ROLE,
  BROKER_DEPLOYMENT: LOCAL_DEPLOYMENT,
};

export interface NpmStartRecord {
  readonly pid: number;
  readonly brokerUrl: string;
  readonly emulatorUrl: string;
  /** BROKER_* and AWS_REGION, as the broker's settings were loaded from them. */
  readonly env: Readonly<Record<string, string>>;
}

/** Per user: two people on one machine each reach their own `npm start`. */
export function npmStartRecordPath(): string {
  return join(tmpdir(), `activation-broker-npm-start-${userInfo().uid}.json`);
}

export function writeNpmStartRecord(record: NpmStartRecord): void {
  writeFileSync(npmStartRecordPath(), `${JSON.stringify(record, null, 2)}\n`, { mode: 0o600 });
}

/** Removes the record if it is still this process's (a later `npm start` may have replaced it). */
export function removeNpmStartRecord(pid: number): void {
  if (readNpmStartRecord()?.pid === pid) rmSync(npmStartRecordPath(), { force: true });
}

/** The record of a running `npm start`, or undefined (none, unreadable, or its process is gone). */
export function readNpmStartRecord(): NpmStartRecord | undefined {
  let record: Partial<NpmStartRecord>;
  try {
    record = JSON.parse(readFileSync(npmStartRecordPath(), "utf8")) as Partial<NpmStartRecord>;
  } catch {
    return undefined;
  }
  if (
    typeof record.pid !== "number" ||
    typeof record.emulatorUrl !== "string" ||
    typeof record.brokerUrl !== "string" ||
    typeof record.env !== "object" ||
    record.env === null
  ) {
    return undefined;
  }
  // Killed without its cleanup (kill -9): the file outlived the process.
  if (!isAlive(record.pid)) return undefined;
  return record as NpmStartRecord;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: alive, but another user's.
    return (error as { code?: unknown }).code === "EPERM";
  }
}
