/**
 * A durable local spool for CDRs: every CDR is appended to a segment file opened with O_DSYNC, so
 * it is on disk before the call is considered recorded, and a database outage or a crash loses
 * none. Appends arriving together share one synchronized write (group commit), which keeps the
 * cost per call low at high call rates.
 *
 * Segments are `segment-<ms>-<seq>.jsonl`, one JSON record per line. The writer rotates the open
 * segment, replays closed ones into the database (idempotent by call_uuid) and deletes a segment
 * only when every line of it is confirmed.
 *
 * One spool, one owner: open() takes an exclusive lock on the folder (spool-lock.ts), so a second
 * daemon pointed at the same folder cannot replay and delete the first one's open segment.
 */
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { SpoolLock } from './spool-lock';
import { nextTurn } from '../next-turn';

/**
 * How a segment is opened: appended to, created when missing, and O_DSYNC, so that every write is
 * durable when it returns (synchronized I/O data integrity, what fdatasync gives).
 */
export function segmentFlags(): number {
  const { O_WRONLY, O_APPEND, O_CREAT, O_DSYNC } = fs.constants;
  // Not on every platform (Windows): without it the spool's writes would not be durable.
  if (O_DSYNC === undefined) throw new Error('this platform has no O_DSYNC: the CDR spool cannot make its writes durable');
  return O_WRONLY | O_APPEND | O_CREAT | O_DSYNC;
}

/**
 * The least time from the start of one synchronized write to the start of the next. Under load
 * the appends of this long share one write (a few hundred CDRs a second: 50-100 writes instead of
 * one every time the disk answers, each a trip through libuv's thread pool and a wake-up of a
 * thread on another core); a record is on disk at most this much later. An append after a quiet
 * moment is written at once.
 */
export const GROUP_COMMIT_MS = 10;

/** How long a batch waits before its write: what is left of GROUP_COMMIT_MS since the last one started (ms, performance.now()). */
export function groupCommitWait(lastWriteAt: number, now: number): number {
  return Math.max(0, lastWriteAt + GROUP_COMMIT_MS - now);
}

export class SpoolClosedError extends Error {
  override readonly name = 'SpoolClosedError';
  readonly code = 'CDR_SPOOL_CLOSED';
  constructor(dir: string) {
    super(`the CDR spool ${dir} is not open: a CDR arrived before it was opened or after it was closed`);
  }
}

export class CdrSpool {
  private handle: fsp.FileHandle | null = null;
  private currentPath: string | null = null;
  private currentLines = 0;
  private queue: Array<{ line: string; resolve(): void; reject(err: Error): void }> = [];
  /**
   * When the lines not yet in the database were handed in (pendingSince), on the monotonic clock
   * (performance.now, the spend guards' clock: a wall clock stepped back would make them look
   * newer): the earliest of the queue, of the batch being written, and of each segment in the
   * folder the writer has not deleted yet (done()).
   */
  private queueSince: number | null = null;
  private batchSince: number | null = null;
  private readonly segmentsSince = new Map<string, number>();
  /** The earliest of segmentsSince; undefined: to be found again (a segment was deleted). */
  private oldestSegment: number | null | undefined = null;
  private writing: Promise<void> | null = null;
  /** The synchronized write under way, if any (what rotate() waits for). */
  private inflight: Promise<void> | null = null;
  private lastWriteAt = -Infinity;
  private seq = 0;

  private lock: SpoolLock | null = null;
  /** Between open() and close(): appends are taken only while the folder's lock is held. */
  private accepting = false;

  constructor(readonly dir: string) {}

  /** Creates the folder and takes its lock (SpoolLockedError when another daemon holds it). Idempotent. */
  async open(): Promise<void> {
    if (this.lock) return;
    try {
      await fsp.mkdir(this.dir, { recursive: true, mode: 0o700 });
    } catch (err) {
      throw new Error(`cannot create the CDR spool folder ${this.dir} (${(err as Error).message}): set CDR_SPOOL_DIR to a folder this user may write`, { cause: err });
    }
    segmentFlags(); // refuse to start where writes cannot be made durable
    this.lock = SpoolLock.acquire(this.dir);
    // A previous run's segments, still to be replayed: pending since they were started (the wall
    // clock in their names, brought to the monotonic one).
    for (const n of await fsp.readdir(this.dir)) if (segmentKey(n)) this.segmentPending(path.join(this.dir, n), sinceOfName(n));
    this.accepting = true;
  }

  /**
   * Since when (performance.now) a line handed to append() may not be in the database yet: when
   * the oldest line queued, being written or in a segment the writer has not deleted (done()) was
   * handed in; null when there is none. Every line handed in before it is written or quarantined.
   * Cheap (no file system): the spend guard asks at every read of a tenant's money.
   */
  pendingSince(): number | null {
    if (this.oldestSegment === undefined) {
      let oldest: number | null = null;
      for (const at of this.segmentsSince.values()) oldest = oldest === null || at < oldest ? at : oldest;
      this.oldestSegment = oldest;
    }
    return earliest(earliest(this.queueSince, this.batchSince), this.oldestSegment);
  }

  /** The writer deleted `segmentPath`: every line of it is in the database or quarantined. */
  done(segmentPath: string): void {
    if (this.segmentsSince.delete(segmentPath)) this.oldestSegment = undefined;
  }

  private segmentPending(segmentPath: string, since: number): void {
    const had = this.segmentsSince.get(segmentPath);
    if (had !== undefined && had <= since) return;
    this.segmentsSince.set(segmentPath, since);
    if (this.oldestSegment !== undefined) this.oldestSegment = earliest(this.oldestSegment, since);
  }

  /**
   * Resolves once the record is on disk (its synchronized write returned). Rejects
   * (SpoolClosedError) before open() and once close() has begun: the folder's lock is not (or
   * soon no longer) this process's, and another daemon may be replaying it.
   */
  append(record: object, handedAt: number = performance.now()): Promise<void> {
    return this.write(`${asciiJson(record)}\n`, handedAt);
  }

  /**
   * Writes an empty line (no record: the replay and the depth count skip it) the way append()
   * writes a record: resolves once the spool takes writes again (a writer that stopped holding
   * CDRs asks this to learn that a full disk has room), rejects as append() would.
   */
  probe(): Promise<void> {
    return this.write('\n', performance.now());
  }

  private write(line: string, handedAt: number): Promise<void> {
    if (!this.accepting) return Promise.reject(new SpoolClosedError(this.dir));
    return new Promise((resolve, reject) => {
      this.queue.push({ line, resolve, reject });
      this.queueSince = earliest(this.queueSince, handedAt);
      if (!this.writing) this.writing = this.drain();
    });
  }

  private async drain(): Promise<void> {
    while (this.queue.length > 0) {
      // Let every append of this tick join the batch, and under load those of GROUP_COMMIT_MS.
      let wait = groupCommitWait(this.lastWriteAt, performance.now());
      if (wait <= 0) await nextTurn();
      while (wait > 0) {
        // A timer counts from the event loop's cached time and may fire early: wait out the rest.
        await new Promise((r) => setTimeout(r, wait));
        wait = groupCommitWait(this.lastWriteAt, performance.now());
      }
      this.lastWriteAt = performance.now();
      const batch = this.queue.splice(0);
      const text = batch.map((b) => b.line).join('');
      this.batchSince = this.queueSince;
      this.queueSince = null;
      try {
        await this.writeDurably(text, batch.length);
      } catch {
        // A broken segment (disk hiccup, disk full, handle lost): close it, start a fresh segment
        // and try once more. The broken one stays for the writer (a torn last line is quarantined).
        this.dropSegment();
        try {
          await this.writeDurably(text, batch.length);
        } catch (err) {
          // The fresh segment may end in torn bytes too: the next batch must not follow them
          // (its first line would join them, and an acknowledged record be quarantined).
          this.dropSegment();
          this.batchSince = null;
          for (const b of batch) b.reject(err as Error);
          continue;
        }
      }
      this.batchSince = null;
      for (const b of batch) b.resolve();
    }
    this.writing = null;
  }

  /** Leaves the open segment as it is, closed, for the writer; the next write starts a fresh one. */
  private dropSegment(): void {
    const broken = this.handle;
    this.handle = null;
    this.currentPath = null;
    void broken?.close().catch(() => undefined);
  }

  private async writeDurably(text: string, lines: number): Promise<void> {
    const write = this.writeToSegment(text, lines);
    this.inflight = write;
    try {
      await write;
    } finally {
      if (this.inflight === write) this.inflight = null;
    }
  }

  private async writeToSegment(text: string, lines: number): Promise<void> {
    if (!this.handle) {
      this.currentPath = path.join(this.dir, `segment-${Date.now()}-${String(this.seq++).padStart(6, '0')}.jsonl`);
      this.handle = await fsp.open(this.currentPath, segmentFlags());
      this.currentLines = 0;
    }
    // Only a file made: one never made would never be deleted (done()), and hold pendingSince.
    // Every batch, not only the first: a held CDR offered again was handed in long before.
    if (this.currentPath !== null && this.batchSince !== null) this.segmentPending(this.currentPath, this.batchSince);
    // O_DSYNC: the write returns once its data is on disk, as a write followed by fdatasync would,
    // in one trip through libuv's thread pool instead of two (bench/PROFILE.md, release 10).
    const bytes = Buffer.byteLength(text);
    const { bytesWritten } = await this.handle.write(text);
    // libuv reports what it wrote before a later write() failed (disk full, quota): not on disk.
    if (bytesWritten !== bytes) throw new Error(`CDR spool: wrote ${bytesWritten} of ${bytes} bytes to ${this.currentPath ?? 'a segment'}`);
    this.currentLines += lines;
  }

  /**
   * Closes the open segment so the writer can replay it, once the write under way (if any) has
   * returned; appends after that go to a new segment. It does not wait for the queue to empty:
   * under load appends never stop, and the writer would wait for good (the next flush takes them).
   */
  async rotate(): Promise<void> {
    while (this.inflight) await this.inflight.catch(() => undefined);
    const handle = this.handle;
    if (handle && this.currentLines > 0) {
      // Detach before awaiting: an append arriving meanwhile opens a new segment, never this one.
      this.handle = null;
      this.currentPath = null;
      await handle.close();
    }
  }

  /** Closed segments, oldest first. */
  async closedSegments(): Promise<string[]> {
    const known = [...this.segmentsSince.keys()];
    const names = (await fsp.readdir(this.dir)).filter((n) => n.startsWith('segment-') && n.endsWith('.jsonl'));
    // A segment gone from the folder without done() (a failed unlink whose file went anyway, an
    // operator who moved it) is no longer waiting: it must not hold pendingSince for good. Only
    // those known before the listing began: one made meanwhile may not be in it.
    const listed = new Set(names.map((n) => path.join(this.dir, n)));
    for (const p of known) if (!listed.has(p)) this.done(p);
    return names
      .map((n) => path.join(this.dir, n))
      .filter((p) => p !== this.currentPath)
      .sort(compareSegments);
  }

  /**
   * When the oldest segment still in the folder, open one included, was started (the time in its
   * name, when its first CDR was spooled), or null when there is none. A segment is deleted once
   * every record of it is written or quarantined, so this is how long the oldest CDR not yet in
   * the database has waited (hotline_cdr_spool_oldest_age_seconds).
   */
  async oldestSegmentMs(): Promise<number | null> {
    let oldest: number | null = null;
    for (const n of await fsp.readdir(this.dir)) {
      const key = segmentKey(n);
      if (key) oldest = Math.min(oldest ?? Infinity, key[0]);
    }
    return oldest;
  }

  /**
   * Lines that are not blank in every segment, open one included (for the spool-depth metric at
   * start-up): counted in the bytes, without decoding a backlog of segments as text.
   */
  async countRecords(): Promise<number> {
    let count = 0;
    for (const n of await fsp.readdir(this.dir)) {
      if (!n.startsWith('segment-')) continue;
      count += countLines(await fsp.readFile(path.join(this.dir, n)));
    }
    return count;
  }

  /**
   * Every segment in the folder, the open one included, oldest first: its bytes, and the instant
   * since which its lines are pending (pendingSince). A segment this spool did not know (a
   * worker's folder adopted after open(): cluster/spool-layout.ts) is pending from the time in
   * its name from now on, as a previous run's are. For the writer's start (CdrWriter.start).
   */
  async eachSegment(fn: (bytes: Buffer, since: number) => void): Promise<void> {
    const names = (await fsp.readdir(this.dir)).filter((n) => segmentKey(n) !== null).sort(compareSegments);
    for (const n of names) {
      const p = path.join(this.dir, n);
      let since = this.segmentsSince.get(p);
      if (since === undefined) this.segmentPending(p, (since = sinceOfName(n)));
      fn(await fsp.readFile(p), since);
    }
  }

  /**
   * Keeps records the database refused, with their reasons, for a person to look at. Written as
   * durably as a segment (O_DSYNC), all of a segment's in one write: the writer deletes the
   * segment right after, and from then on this is the lines' only copy, which a power cut must not
   * take back; one synchronized write per line would hold the event loop once per refused line.
   */
  quarantine(entries: ReadonlyArray<{ line: string; reason: string }>): void {
    if (entries.length === 0) return;
    const fd = fs.openSync(path.join(this.dir, 'quarantine.jsonl'), segmentFlags());
    try {
      fs.writeFileSync(fd, entries.map(({ line, reason }) => `${JSON.stringify({ reason, line })}\n`).join(''));
    } finally {
      fs.closeSync(fd);
    }
  }

  /** Closes the open segment and releases the folder's lock. */
  async close(): Promise<void> {
    this.accepting = false;
    while (this.writing) await this.writing;
    const handle = this.handle;
    this.handle = null;
    this.currentPath = null;
    await handle?.close();
    this.lock?.release();
    this.lock = null;
  }
}

/**
 * The call_uuid of every record in the folder's segments (records are flat objects: the key
 * appears once a line). For the call journal's recovery, run with the folder's lock held before
 * anything is appended: a call whose CDR is spooled needs no other.
 */
export async function spooledCallUuids(dir: string): Promise<Set<string>> {
  const uuids = new Set<string>();
  const field = /"call_uuid":("(?:[^"\\]|\\.)*")/g;
  for (const n of await fsp.readdir(dir)) {
    if (segmentKey(n) === null) continue;
    const text = await fsp.readFile(path.join(dir, n), 'latin1');
    for (const m of text.matchAll(field)) {
      try {
        uuids.add(JSON.parse(m[1]) as string);
      } catch {
        // A damaged line: the writer quarantines it; it names no call here.
      }
    }
  }
  return uuids;
}

/** A segment's name (or path) read: [ms it was started, sequence], or null for any other file. */
function segmentKey(nameOrPath: string): [number, number] | null {
  const m = /(?:^|\/)segment-(\d+)-(\d+)\.jsonl$/.exec(nameOrPath);
  return m ? [Number(m[1]), Number(m[2])] : null;
}

/**
 * Since when the lines of a segment found in the folder are pending: the wall-clock time in its
 * name (when its first CDR was spooled), brought to the monotonic clock, and never later than now
 * (a previous run's wall clock ahead of this one's, or a step back since).
 */
function sinceOfName(name: string): number {
  const now = performance.now();
  return Math.min((segmentKey(name)?.[0] ?? 0) + (now - Date.now()), now);
}

/** segment-<ms>-<seq>: by time, then sequence. */
function compareSegments(a: string, b: string): number {
  const [ta, sa] = segmentKey(a) ?? [0, 0];
  const [tb, sb] = segmentKey(b) ?? [0, 0];
  return ta - tb || sa - sb;
}

/** Lines that are not blank (ASCII whitespace only, as isBlankLine says), counted in the bytes. */
export function countLines(bytes: Uint8Array): number {
  let count = 0;
  let content = false;
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i];
    if (b === 0x0a) {
      if (content) count++;
      content = false;
    } else if (b !== 0x20 && b !== 0x09 && b !== 0x0d && b !== 0x0b && b !== 0x0c) {
      content = true;
    }
  }
  return content ? count + 1 : count;
}

/** A spool line with nothing but spaces, tabs, CR, VT or FF: not a record, not counted. */
export function isBlankLine(line: string): boolean {
  return /^[ \t\r\v\f]*$/.test(line);
}

/**
 * JSON with every character beyond ASCII written as a \uXXXX escape: the same value for
 * JSON.parse, and segment files that are pure ASCII, which a replay decodes and parses about
 * twice as fast as UTF-8 text with Chinese caller regions (bench/PROFILE.md).
 */
export function asciiJson(value: unknown): string {
  const json = JSON.stringify(value) as string | undefined;
  if (json === undefined) throw new TypeError('asciiJson: the value has no JSON text');
  // A line without a caller region or other text beyond ASCII is kept as it is: a test, not a copy.
  return NON_ASCII.test(json) ? json.replace(NON_ASCII_ALL, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`) : json;
}

const NON_ASCII = /[\u007f-\uffff]/;
const NON_ASCII_ALL = /[\u007f-\uffff]/g;

/** The earlier of two instants, either of which may be missing (null). */
function earliest(a: number | null, b: number | null): number | null {
  if (a === null) return b;
  return b === null || a <= b ? a : b;
}
