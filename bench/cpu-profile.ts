/**
 * Reads a V8 .cpuprofile (node --cpu-prof) and ranks functions by self time and by total time
 * (self plus everything they called, each function counted once per stack so recursion does not
 * inflate it). `node dist/bench/cpu-profile.js <file.cpuprofile> [top]` prints both tables, of the
 * measured run only when `<file>.window.json` (written by npm run bench:profile) is beside it.
 */
import fs from 'node:fs';
import path from 'node:path';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
  children?: number[];
}

export interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples?: number[];
  timeDeltas?: number[];
}

export interface FrameCost {
  frame: string;
  selfMs: number;
  totalMs: number;
  selfPct: number;
  totalPct: number;
}

function frameName(node: ProfileNode, root: string): string {
  const { functionName, url, lineNumber } = node.callFrame;
  const name = functionName || '(anonymous)';
  if (!url) return name;
  let file = url.replace(/^file:\/\//, '');
  const nm = file.lastIndexOf('node_modules/');
  if (nm >= 0) file = file.slice(nm + 'node_modules/'.length);
  else if (file.startsWith(root)) file = path.relative(root, file);
  return `${name} ${file}:${lineNumber + 1}`;
}

/**
 * Self and total time per function. `window` (µs on the monotonic clock: process.hrtime / 1000,
 * the clock V8 stamps its samples with on Linux) keeps only the samples taken inside it.
 */
export function rankFrames(profile: CpuProfile, root: string, window?: { fromUs: number; toUs: number }): { frames: FrameCost[]; totalMs: number } {
  const byId = new Map<number, ProfileNode>();
  for (const n of profile.nodes) byId.set(n.id, n);
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  // Time per node from samples and their time deltas (µs); hitCount alone when absent.
  const selfUs = new Map<number, number>();
  if (profile.samples && profile.timeDeltas) {
    let at = profile.startTime;
    for (let i = 0; i < profile.samples.length; i++) {
      at += profile.timeDeltas[i];
      if (window && (at < window.fromUs || at > window.toUs)) continue;
      const dt = profile.timeDeltas[i + 1] ?? profile.timeDeltas[i] ?? 0;
      selfUs.set(profile.samples[i], (selfUs.get(profile.samples[i]) ?? 0) + Math.max(0, dt));
    }
  } else {
    const total = profile.endTime - profile.startTime;
    const hits = profile.nodes.reduce((a, n) => a + (n.hitCount ?? 0), 0) || 1;
    for (const n of profile.nodes) selfUs.set(n.id, ((n.hitCount ?? 0) * total) / hits);
  }
  const self = new Map<string, number>();
  const total = new Map<string, number>();
  let all = 0;
  for (const [id, us] of selfUs) {
    if (us === 0) continue;
    const node = byId.get(id)!;
    const name = frameName(node, root);
    if (name === '(idle)' || name === '(program)') continue;
    all += us;
    self.set(name, (self.get(name) ?? 0) + us);
    const seen = new Set<string>();
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const n = frameName(byId.get(cur)!, root);
      if (seen.has(n)) continue;
      seen.add(n);
      total.set(n, (total.get(n) ?? 0) + us);
    }
  }
  const frames = [...total.entries()].map(([frame, t]) => ({
    frame,
    selfMs: (self.get(frame) ?? 0) / 1000,
    totalMs: t / 1000,
    selfPct: (100 * (self.get(frame) ?? 0)) / all,
    totalPct: (100 * t) / all,
  }));
  return { frames, totalMs: all / 1000 };
}

export function formatTop(frames: FrameCost[], by: 'selfMs' | 'totalMs', top: number): string {
  const rows = [...frames].filter((f) => f.frame !== '(root)').sort((a, b) => b[by] - a[by]).slice(0, top);
  return rows.map((f) => `${f.selfPct.toFixed(1).padStart(5)}% self ${f.totalPct.toFixed(1).padStart(5)}% total  ${f.frame}`).join('\n');
}

if (require.main === module) {
  const file = process.argv[2];
  if (!file) {
    process.stderr.write('usage: node dist/bench/cpu-profile.js <file.cpuprofile> [top]\n');
    process.exit(2);
  }
  const top = Number(process.argv[3] ?? 30);
  const profile = JSON.parse(fs.readFileSync(file, 'utf8')) as CpuProfile;
  const root = path.resolve(__dirname, '..', '..');
  // npm run bench:profile leaves the measured run's window beside its profile: rank that run only.
  const windowFile = `${file}.window.json`;
  const window = fs.existsSync(windowFile) ? ((JSON.parse(fs.readFileSync(windowFile, 'utf8')) as { fromUs: number; toUs: number } | null) ?? undefined) : undefined;
  const { frames, totalMs } = rankFrames(profile, root, window);
  process.stdout.write(`busy CPU in ${window ? 'the measured run' : 'profile'}: ${totalMs.toFixed(0)} ms\n\nby self time:\n${formatTop(frames, 'selfMs', top)}\n\nby total time:\n${formatTop(frames, 'totalMs', top)}\n`);
}
