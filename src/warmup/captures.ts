/**
 * Reads the byte-exact captures of real FreeSWITCH event-socket traffic in test/fixtures/esl
 * (copied from the project's shared fixtures; see that folder's README). Each file is a sequence
 * of `=====FS->CTL <n>B` / `=====CTL->FS <n>B` headers, each followed by exactly n raw bytes and a
 * newline; `=====CLOSED` ends a connection; `##### connection k #####` starts one.
 *
 * In src/ because the daemon's warm-up (warm-up.ts) and the bench's load generator replay them;
 * the test stand-in of FreeSWITCH (test/peer) reads them through test/peer/fixtures.ts. The build
 * copies those the warm-up needs into dist/captures/esl (package-captures.ts).
 */
import fs from 'node:fs';
import path from 'node:path';

export type Direction = 'FS->CTL' | 'CTL->FS';

/** The capture whose CHANNEL_DATA stands for a caller's inbound leg (channelDataTemplate's default). */
export const CHANNEL_DATA_CAPTURE = 'outbound-plain-hunt-busy-noanswer-answer.log';

export interface Chunk {
  direction: Direction;
  bytes: Buffer;
}

export interface Capture {
  connections: Chunk[][];
}

/**
 * Where the build puts the captures the warm-up replays, seen from this module's folder
 * (dist/captures/esl from the compiled dist/src/warmup; package-captures.ts), so that a
 * deployment of dist/ without test/ still warms up.
 */
export function packagedCaptureDirFrom(moduleDir: string): string {
  return path.resolve(moduleDir, '..', '..', 'captures', 'esl');
}

/**
 * The captures folder seen from this module's folder: test/fixtures/esl from the TypeScript source
 * (src/warmup) or the compiled code (dist/src/warmup); without it (a deployment of dist/ alone),
 * the build's copy of the warm-up's captures; neither: where test/fixtures/esl would be (reads fail).
 */
export function fixtureDirFrom(moduleDir: string): string {
  const source = path.resolve(moduleDir, '..', '..', 'test', 'fixtures', 'esl');
  return [source, path.resolve(moduleDir, '..', '..', '..', 'test', 'fixtures', 'esl'), packagedCaptureDirFrom(moduleDir)].find((d) => fs.existsSync(d)) ?? source;
}

export const PACKAGED_CAPTURE_DIR = packagedCaptureDirFrom(__dirname);
export const FIXTURE_DIR = fixtureDirFrom(__dirname);

/** A capture of `dir` (by default FIXTURE_DIR), each connection's chunks labelled by who sent them. */
export function readCapture(name: string, dir = FIXTURE_DIR): Capture {
  const capture = readLabelled(name, dir);
  return { connections: capture.connections.map(orient) };
}

/**
 * Direction labels as the recording proxy wrote them. Use readCapture: one capture
 * (inbound-originate-to-socket.log) was recorded with the proxy's two sides named the wrong way
 * round, which its bytes prove: its first chunk, labelled CTL->FS, is `Content-Type: auth/request`,
 * and on the inbound socket only FreeSWITCH sends that, unasked, as soon as a client connects
 * (mod_event_socket.c listener_run).
 */
export function readLabelled(name: string, dir = FIXTURE_DIR): Capture {
  const data = fs.readFileSync(path.join(dir, name));
  const connections: Chunk[][] = [[]];
  let pos = 0;
  while (pos < data.length) {
    const eol = data.indexOf(0x0a, pos);
    const line = data.toString('latin1', pos, eol < 0 ? data.length : eol);
    pos = eol < 0 ? data.length : eol + 1;
    const header = /^=====(FS->CTL|CTL->FS) (\d+)B$/.exec(line);
    if (header) {
      const n = Number(header[2]);
      connections[connections.length - 1].push({ direction: header[1] as Direction, bytes: data.subarray(pos, pos + n) });
      pos += n;
      if (data[pos] === 0x0a) pos++;
    } else if (/^##### connection \d+ #####$/.test(line) && connections[connections.length - 1].length > 0) {
      connections.push([]);
    }
  }
  return { connections };
}

/** True when a connection's labels are swapped (see readLabelled): FreeSWITCH's auth/request labelled as ours. */
export function labelsSwapped(chunks: readonly Chunk[]): boolean {
  const first = chunks[0];
  return first !== undefined && first.direction === 'CTL->FS' && first.bytes.toString('latin1').startsWith('Content-Type: auth/request');
}

function orient(chunks: Chunk[]): Chunk[] {
  if (!labelsSwapped(chunks)) return chunks;
  return chunks.map((c) => ({ direction: c.direction === 'FS->CTL' ? 'CTL->FS' : 'FS->CTL', bytes: c.bytes }));
}

/** The bytes one side sent, concatenated, for one connection. */
export function streamOf(chunks: Chunk[], direction: Direction): Buffer {
  return Buffer.concat(chunks.filter((c) => c.direction === direction).map((c) => c.bytes));
}

/**
 * The CHANNEL_DATA a real FreeSWITCH sent in reply to `connect` (outbound socket), as ordered
 * [name, raw value] pairs, without the trailing Content-Type/Reply-Text/Socket-Mode/Control.
 * By default a caller's inbound leg; outbound-originated-leg-to-socket.log gives a leg that
 * FreeSWITCH originated (click-to-call) and handed over with `&socket(…)`.
 */
export function channelDataTemplate(captureName = CHANNEL_DATA_CAPTURE, dir = FIXTURE_DIR): Array<[string, string]> {
  const capture = readCapture(captureName, dir);
  const first = capture.connections[0].find((c) => c.direction === 'FS->CTL')!;
  const text = first.bytes.toString('utf8');
  const pairs: Array<[string, string]> = [];
  for (const line of text.split('\n')) {
    const sep = line.indexOf(': ');
    if (sep <= 0) continue;
    const name = line.slice(0, sep);
    if (name === 'Content-Type') break;
    pairs.push([name, line.slice(sep + 2)]);
  }
  return pairs;
}
