/**
 * One step of a call, alone: a real (SQLite) database holding the tenant's configuration, the
 * snapshot the daemon would build from it, the plan the session would make, and a Call whose
 * channel is a ScriptedChannel (test/peer/scripted-channel.ts: FreeSWITCH's rules on a virtual
 * clock). The prompt files may live in a real temporary folder, some of them missing.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Knex } from 'knex';
import type { Test } from 'tap';
import { Call, CallFacts } from '../../../src/calls/call';
import { QueueBook, type CallDeps } from '../../../src/calls/context';
import { openingPrompts, planCall } from '../../../src/calls/plan';
import { SYSTEM_PROMPTS } from '../../../src/calls/prompts';
import { loadSettings, type Settings } from '../../../src/config';
import { createLogger } from '../../../src/log';
import { Metrics } from '../../../src/metrics';
import { PromptResolver } from '../../../src/prompts';
import { PromptFileStatus, promptFilesInUse } from '../../../src/prompts/file-check';
import { loadSnapshot } from '../../../src/snapshot/store';
import type { ConfigSnapshot } from '../../../src/snapshot/types';
import { CallerMemory } from '../../../src/calls/caller-memory';
import { BRIDGING_VARIABLES, servedCallVariables } from '../../../src/calls/steps/hunt';
import { claimVariables } from '../../../src/esl/call-channel';
import { dbTargets } from '../../helpers/db';
import { ScriptedChannel, type ScriptedOptions } from '../../peer/scripted-channel';

/** FreeSWITCH ms of the rendered system prompts (sox, `npm run prompts`), as the captures played them. */
export const SYSTEM_PROMPT_MS: Readonly<Record<string, number>> = {
  welcome: 9285, invalid_entry: 7811, enter_pin: 10128, enter_extension: 15125, wrong_pin: 8538, choose_option: 3000, goodbye: 8023,
  pin_failed: 8902, leave_message: 12333, capped: 9964, nobody_answered: 13176, all_busy: 8699, service_unavailable: 12075,
};

export interface StepWorld {
  knex: Knex;
  settings: Settings;
  /** PROMPTS_DIR: a real folder; `present` system prompts exist in it, the others are missing. */
  systemDir: string;
  snapshot(): Promise<ConfigSnapshot>;
  /** FreeSWITCH ms per system prompt file, for the scripted channel. */
  promptMs: Record<string, number>;
}

export async function stepWorld(t: Test, opts: { present?: readonly string[] } = {}): Promise<StepWorld> {
  const db = await dbTargets()[0].create();
  const systemDir = fs.mkdtempSync(path.join(os.tmpdir(), 'hotline-prompts-'));
  t.teardown(async () => {
    await db.destroy();
    fs.rmSync(systemDir, { recursive: true, force: true });
  });
  for (const name of opts.present ?? SYSTEM_PROMPTS) fs.writeFileSync(path.join(systemDir, `${name}.wav`), Buffer.alloc(1000, 1));
  const settings = loadSettings({
    env: {},
    overrides: { database: { url: db.url }, prompts: { systemDir, sameFilesystem: 'yes' }, recordings: { dir: '/rec' }, log: { level: 'silent' } },
  });
  const promptMs: Record<string, number> = {};
  for (const [name, ms] of Object.entries(SYSTEM_PROMPT_MS)) promptMs[path.join(systemDir, `${name}.wav`)] = ms;
  return { knex: db.knex, settings, systemDir, snapshot: () => loadSnapshot(db.knex, 1), promptMs };
}

export interface StepCall {
  call: Call;
  channel: ScriptedChannel;
  metrics: Metrics;
  snapshot: ConfigSnapshot;
}

/**
 * The call the session would make for `dialed`, up to the step under test: identified, planned,
 * with its greeting pending. `checkFiles`: the daemon sees the prompt folder (PROMPTS_SAME_FILESYSTEM).
 */
export async function stepCall(world: StepWorld, dialed: string, script: ScriptedOptions, opts: { caller?: string; checkFiles?: boolean; at?: Date } = {}): Promise<StepCall> {
  const snapshot = await world.snapshot();
  const at = opts.at ?? new Date('2026-12-02T10:00:00+08:00');
  const plan = planCall(snapshot, { dialed, caller: opts.caller ?? '13912345678', at }, () => 0);
  if (plan.kind !== 'serve') throw new Error(`the test call is not served: ${plan.kind}`);
  const metrics = new Metrics();
  let promptFiles: PromptFileStatus | null = null;
  if (opts.checkFiles) {
    promptFiles = new PromptFileStatus(() => undefined, (counts) => metrics.setPromptFileProblems(counts));
    await promptFiles.refresh(() => promptFilesInUse(world.settings, snapshot));
  }
  const deps: CallDeps = {
    settings: world.settings,
    snapshot,
    metrics,
    log: createLogger('silent'),
    clock: () => at,
    random: () => 0,
    knex: world.knex,
    callerMemory: new CallerMemory(world.knex, { timeoutMs: world.settings.admission.queryTimeoutMs }).lookup,
    callerMemoryInTurn: false,
    queues: new QueueBook(),
    prompts: new PromptResolver(world.settings, { has: () => false }),
    promptFiles,
  };
  // Claimed as the session claims every call before its first step (call-session.ts flow,
  // EslCallChannel.claim): the handled flag and the bridging variables are on the channel.
  const channel = new ScriptedChannel({ promptMs: world.promptMs, claimed: claimVariables(BRIDGING_VARIABLES), ...script });
  const facts = new CallFacts();
  facts.tenantId = plan.call.tenant.id;
  const call = new Call(plan.call, channel, facts, deps, deps.log, openingPrompts(plan));
  // And a served call's ringback, set with the claim too (hunt.ts servedCallVariables); a test's own `claimed` stands for the whole claim.
  if (script.claimed === undefined) Object.assign(channel.model.vars, servedCallVariables(call.prompts, plan.call.tenant, deps.log));
  return { call, channel, metrics, snapshot };
}

/** The value of a counter or gauge with these labels, from the registry. */
export async function metricValue(metrics: Metrics, name: string, labels: Record<string, string> = {}): Promise<number> {
  const m = (await metrics.registry.getMetricsAsJSON()).find((x) => x.name === name);
  const v = m?.values.find((x) => Object.entries(labels).every(([k, val]) => x.labels[k] === val));
  return Number(v?.value ?? 0);
}
