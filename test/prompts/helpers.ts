// Helpers for prompt tests: temp dirs, a counting/recording spawn, WAV sample statistics.
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Test } from 'tap';
import type { SpawnFn } from '../../src/prompts/render';
import { readWavInfo, type WavInfo } from '../../src/prompts/wav';

export function tempDir(t: Test, prefix = 'hotline-tts-'): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

export interface SpawnCall {
  command: string;
  args: readonly string[];
  /** What the renderer wrote to the child's stdin. */
  stdin: string;
}

/** child_process.spawn that records every call (and, for espeak-ng, what went to its stdin). */
export function recordingSpawn(replace?: (command: string, args: readonly string[]) => [string, string[]] | null): { spawn: SpawnFn; calls: SpawnCall[] } {
  const calls: SpawnCall[] = [];
  const fn: SpawnFn = (command: string, args: readonly string[], options: SpawnOptions): ChildProcess => {
    const call: SpawnCall = { command, args: [...args], stdin: '' };
    calls.push(call);
    const [cmd, argv] = replace?.(command, args) ?? [command, [...args]];
    const child = spawn(cmd, argv, options);
    // Observe what the renderer writes to stdin without consuming it.
    const stdin = child.stdin;
    if (stdin) {
      const write = stdin.write.bind(stdin) as (chunk: unknown, ...rest: unknown[]) => boolean;
      stdin.write = ((chunk: unknown, ...rest: unknown[]) => {
        if (typeof chunk === 'string' || Buffer.isBuffer(chunk)) call.stdin += chunk.toString();
        return write(chunk, ...rest);
      }) as typeof stdin.write;
      const end = stdin.end.bind(stdin) as (...rest: unknown[]) => unknown;
      stdin.end = ((...rest: unknown[]) => {
        const chunk = rest[0];
        if (typeof chunk === 'string' || Buffer.isBuffer(chunk)) call.stdin += chunk.toString();
        return end(...rest);
      }) as typeof stdin.end;
    }
    return child;
  };
  return { spawn: fn, calls };
}

export interface WavStats extends WavInfo {
  peak: number;
  rms: number;
}

export function wavStats(file: string): WavStats {
  const buf = fs.readFileSync(file);
  const info = readWavInfo(buf);
  let peak = 0;
  let sumSquares = 0;
  const n = Math.floor(info.dataLength / 2);
  for (let i = 0; i < n; i++) {
    const s = buf.readInt16LE(info.dataOffset + i * 2);
    peak = Math.max(peak, Math.abs(s));
    sumSquares += s * s;
  }
  return { ...info, peak, rms: Math.sqrt(sumSquares / Math.max(1, n)) };
}
