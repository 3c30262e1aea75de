/**
 * Run by connection-young-gc.test.ts with --expose-gc: makes connections over stand-in sockets that
 * each carry a marker of known size, drops them, runs two young-generation collections, and prints
 * how much the old generation grew. A connection whose objects a scavenge keeps alive (and so
 * promotes) takes its socket and the marker with it.
 */
import { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
import { EslConnection } from '../../src/esl/connection';
import { exposedGc, oldSpaceUsed } from '../helpers/heap';

const gc = exposedGc();

const CONNECTIONS = 200;
const MARKER_OBJECTS = 4000;
/** Each marker object ({ i }) takes at least 16 bytes: a map, properties, elements and one field, 4 bytes each even with compressed pointers. */
const MIN_OBJECT_BYTES = 16;

function connectionWithMarker(): void {
  const socket = new EventEmitter() as EventEmitter & { marker?: unknown };
  socket.marker = Array.from({ length: MARKER_OBJECTS }, (_, i) => ({ i }));
  new EslConnection(socket as unknown as Socket);
}

async function main(): Promise<void> {
  gc({ type: 'major' });
  const before = oldSpaceUsed();
  for (let i = 0; i < CONNECTIONS; i++) connectionWithMarker();
  await new Promise((r) => setImmediate(r));
  gc({ type: 'minor' });
  gc({ type: 'minor' });
  process.stdout.write(JSON.stringify({ oldGrownBytes: oldSpaceUsed() - before, markerBytesAtLeast: CONNECTIONS * MARKER_OBJECTS * MIN_OBJECT_BYTES }));
}

void main();
