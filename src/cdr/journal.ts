/**
 * The calls in progress, on disk, so that a daemon killed in the middle of calls (a crash,
 * `kill -9`, the out-of-memory killer) does not take their CDRs with it: FreeSWITCH ends those
 * calls when the socket goes (hotline_after_socket.xml), and the next daemon on the same spool
 * folder writes their CDRs from this journal (src/calls/journaled-call.ts).
 *
 * One file a process, `calls-in-progress-<ms>-<seq>.jsonl` in the spool folder (whose lock the
 * process holds), one JSON object a line:
 *
 *   {"call":"<uuid>","record":{…}}   what a CDR needs of the call now (the last one of a call wins)
 *   {"ended":"<uuid>"}               its CDR is spooled: nothing left to write for it
 *   {"alive":<ms>}                   the process was running then (every ALIVE_INTERVAL_MS while
 *                                    calls are open): a stopped call ended at the latest of these
 *
 * Lines are gathered for JOURNAL_FLUSH_MS and written in one append: a call that starts and ends
 * within that time is never written, and a daemon killed outright loses what it gathered (calls
 * younger than that). Writes are not synchronized: a process that dies leaves what it wrote in the
 * kernel's page cache; only a power cut of the host could take back lines the kernel had not yet
 * written to the disk (Linux writes dirty pages back within about 30 s). The CDRs themselves are
 * spooled with O_DSYNC (spool.ts). When the file has grown to
 * COMPACT_FACTOR times what the open calls need (at least minCompactBytes), it is written afresh
 * with the open calls only (a temporary file renamed over it), so it stays a few times the size of
 * what is in progress however long the daemon runs.
 *
 * A failed write loses nothing already on disk: the journal counts it, logs the first of a run
 * of failures, keeps what changes in memory, and writes the whole state afresh at the next alive
 * tick (every ALIVE_INTERVAL_MS until one succeeds), so a torn line is never followed by more and
 * a call that ended meanwhile is not left listed as open.
 */
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';

/** The journal files of a folder: this process's and those a stopped one left. */
export const JOURNAL_FILE = /^calls-in-progress-(\d+)-(\d+)\.jsonl$/;
/**
 * How long lines are gathered before one append (ms). A call younger than this when the process
 * dies gets no CDR: it is still in its first prompt, unanswered. Most calls are written once as
 * they begin (identified and admitted within it), once when answered, and their end; at 10 ms
 * the begin and the admission were apt to be two lines (bench/PROFILE.md, release 23).
 */
export const JOURNAL_FLUSH_MS = 50;
/** How often an alive line is written while calls are open (ms): how much a stopped call's end may be early. */
export const ALIVE_INTERVAL_MS = 1000;
/** The file is written afresh once it is this many times what the open calls need. */
export const COMPACT_FACTOR = 4;
const MIN_COMPACT_BYTES = 1 << 20;

export interface JournalOptions {
  flushMs?: number;
  aliveIntervalMs?: number;
  /** The file is never written afresh below this size (bytes). */
  minCompactBytes?: number;
  /** Wall-clock milliseconds (the alive lines). */
  now?: () => number;
  log: Logger;
  /** Counts a failed write (hotline_call_journal_write_failures_total). */
  onWriteFailure?: () => void;
}

/** What a call's record is made of when the journal writes it (read at that moment, not before). */
export type RecordSource = () => unknown;

/**
 * One call in the journal (CallJournal.track), held by its session. Its own fields link the calls
 * written so far, instead of a Map keyed by call, and an ended entry drops its source: the
 * journal holds nothing of a call that has ended. (A Map's replaced hash tables can keep entries
 * until a full collection; bench/PROFILE.md releases 15 and 23 measured no cost from that here.)
 */
export class JournalEntry {
  /** How to read the call's record; null once it has ended (nothing of the call is held then). */
  source: RecordSource | null;
  /** Neighbours in the journal's list of written calls. */
  prev: JournalEntry | null = null;
  next: JournalEntry | null = null;
  written = false;
  /** Waiting in the journal's list of calls to write at the next flush. */
  dirty = false;
  ended = false;
  /** Length of its last line written. */
  length = 0;

  constructor(
    readonly call: string,
    source: RecordSource,
  ) {
    this.source = source;
  }
}

let sequence = 0;

export class CallJournal {
  /**
   * The open calls written so far, newest first: what a fresh file holds (each read anew). Not
   * their lines: kept for the life of a call, a few hundred bytes a call would outlive the young
   * generation and be copied into the old one.
   */
  private head: JournalEntry | null = null;
  private writtenCalls = 0;
  private writtenBytes = 0;
  /** Calls whose record changed since the last flush. */
  private dirty: JournalEntry[] = [];
  /** Written calls that ended since the last flush. */
  private ended: string[] = [];
  private handle: fsp.FileHandle | null = null;
  private fileBytes = 0;
  /** The next flush starts from a fresh file (after a failed write, and at first). */
  private rewrite = true;
  private failing = false;
  private timer: NodeJS.Timeout | null = null;
  private draining: Promise<void> | null = null;
  private readonly heartbeat: NodeJS.Timeout;
  private aliveDue = false;
  private closed = false;
  private readonly flushMs: number;
  private readonly minCompactBytes: number;
  private readonly now: () => number;

  private constructor(
    readonly file: string,
    private readonly options: JournalOptions,
  ) {
    this.flushMs = options.flushMs ?? JOURNAL_FLUSH_MS;
    this.minCompactBytes = options.minCompactBytes ?? MIN_COMPACT_BYTES;
    this.now = options.now ?? Date.now;
    this.heartbeat = setInterval(() => {
      // After a failed write the file may still list calls that have ended since: retried here
      // (once an interval, not at every flush) even with none open.
      if (this.writtenCalls === 0 && !this.failing) return;
      this.aliveDue = true;
      this.schedule();
    }, options.aliveIntervalMs ?? ALIVE_INTERVAL_MS);
    this.heartbeat.unref();
  }

  /**
   * A journal in `dir` (the spool folder, locked by this process) under a name no other file
   * there has. Nothing is written until a call is noted.
   */
  static open(dir: string, options: JournalOptions): CallJournal {
    const file = path.join(dir, `calls-in-progress-${Date.now()}-${String(process.pid * 1000 + (sequence++ % 1000)).padStart(9, '0')}.jsonl`);
    return new CallJournal(file, options);
  }

  /** A call's entry; nothing is written until it is noted. */
  track(call: string, source: RecordSource): JournalEntry {
    return new JournalEntry(call, source);
  }

  /** Open calls as far as the journal knows them (written or about to be). */
  get openCalls(): number {
    let n = this.writtenCalls;
    for (const e of this.dirty) if (!e.written && !e.ended) n++;
    return n;
  }

  /** The call's record changed (or the call began): it is read and written at the next flush. */
  note(entry: JournalEntry): void {
    if (this.closed || entry.ended) return;
    if (!entry.dirty) {
      entry.dirty = true;
      this.dirty.push(entry);
    }
    this.schedule();
  }

  /** The call's CDR is spooled (or could not be, and is in the log): the call leaves the journal. */
  end(entry: JournalEntry): void {
    if (entry.ended) return;
    entry.ended = true;
    entry.source = null;
    if (!entry.written) return;
    this.unlink(entry);
    this.ended.push(entry.call);
    this.schedule();
  }

  /**
   * Writes what is gathered, then stops. With no call open the file is removed: a daemon that
   * stopped cleanly leaves nothing to recover. Never throws.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.heartbeat);
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    while (this.draining) await this.draining;
    // After failed writes the last try is a fresh file, as the alive tick's would have been.
    if (this.failing) this.aliveDue = true;
    if (this.pending()) await this.drain();
    const handle = this.handle;
    this.handle = null;
    await handle?.close().catch(() => undefined);
    if (this.openCalls === 0) await fsp.rm(this.file, { force: true }).catch(() => undefined);
  }

  private link(entry: JournalEntry): void {
    entry.written = true;
    entry.next = this.head;
    if (this.head) this.head.prev = entry;
    this.head = entry;
    this.writtenCalls++;
  }

  private unlink(entry: JournalEntry): void {
    if (entry.prev) entry.prev.next = entry.next;
    else this.head = entry.next;
    if (entry.next) entry.next.prev = entry.prev;
    entry.prev = null;
    entry.next = null;
    entry.written = false;
    this.writtenCalls--;
    this.writtenBytes -= entry.length;
  }

  private pending(): boolean {
    return this.dirty.length > 0 || this.ended.length > 0 || this.aliveDue;
  }

  private schedule(): void {
    if (this.timer || this.draining || this.closed) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      this.draining = this.drain().finally(() => {
        this.draining = null;
        if (this.pending()) this.schedule();
      });
    }, this.flushMs);
  }

  /** One flush: the gathered lines appended, or the whole state written afresh. */
  private async drain(): Promise<void> {
    let text = '';
    const dirty = this.dirty;
    this.dirty = [];
    for (const entry of dirty) {
      entry.dirty = false;
      if (entry.ended) continue;
      const line = this.line(entry);
      if (line === null) continue;
      if (entry.written) this.writtenBytes -= entry.length;
      else this.link(entry);
      entry.length = line.length;
      this.writtenBytes += line.length;
      text += line;
    }
    for (const call of this.ended) text += `{"ended":${JSON.stringify(call)}}\n`;
    this.ended = [];
    // While writes fail, what changed is kept in memory and the whole state is written afresh at
    // the next alive tick: a broken disk is not asked again at every flush.
    if (this.failing && !this.aliveDue) return;
    if (text === '' && !this.aliveDue) return;
    text += `{"alive":${this.now()}}\n`;
    this.aliveDue = false;
    const compact = this.fileBytes + text.length > Math.max(this.minCompactBytes, COMPACT_FACTOR * this.writtenBytes);
    try {
      if (this.rewrite || compact) await this.writeAfresh();
      else await this.append(text);
      if (this.failing) this.options.log.info({ file: this.file }, 'call journal: written again');
      this.failing = false;
    } catch (err) {
      this.options.onWriteFailure?.();
      if (!this.failing) this.options.log.error({ err, file: this.file }, 'call journal could not be written: the CDRs of calls in progress are not kept for a restart until it can');
      this.failing = true;
      // What is on disk may end in a torn line, or list calls that have ended: the retry, at the
      // next alive tick, starts a fresh file.
      this.rewrite = true;
    }
  }

  /** The call's line as its record is now; null (logged) when it cannot be written, which must not stop the others nor the call. */
  private line(entry: JournalEntry): string | null {
    try {
      return `${JSON.stringify({ call: entry.call, record: entry.source?.() ?? null })}\n`;
    } catch (err) {
      this.options.log.error({ err, call_uuid: entry.call }, 'call journal: the call\'s record could not be written');
      return null;
    }
  }

  private async append(text: string): Promise<void> {
    const handle = this.handle;
    if (!handle) throw new Error('call journal: no file open');
    const bytes = Buffer.byteLength(text);
    const { bytesWritten } = await handle.write(text);
    this.fileBytes += bytesWritten;
    if (bytesWritten !== bytes) throw new Error(`call journal: wrote ${bytesWritten} of ${bytes} bytes to ${this.file}`);
  }

  /** The open calls and an alive line into a temporary file, renamed over the journal; appends go to it from then on. */
  private async writeAfresh(): Promise<void> {
    const tmp = `${this.file}.tmp`;
    let text = '';
    for (let entry = this.head; entry; entry = entry.next) {
      const line = this.line(entry) ?? '';
      entry.length = line.length;
      text += line;
    }
    this.writtenBytes = text.length;
    text += `{"alive":${this.now()}}\n`;
    const { O_WRONLY, O_CREAT, O_TRUNC, O_APPEND } = fs.constants;
    const handle = await fsp.open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0o600);
    try {
      const bytes = Buffer.byteLength(text);
      const { bytesWritten } = await handle.write(text);
      if (bytesWritten !== bytes) throw new Error(`call journal: wrote ${bytesWritten} of ${bytes} bytes to ${tmp}`);
      await fsp.rename(tmp, this.file);
      this.fileBytes = bytes;
    } catch (err) {
      await handle.close().catch(() => undefined);
      await fsp.rm(tmp, { force: true }).catch(() => undefined);
      throw err;
    }
    const old = this.handle;
    this.handle = handle;
    this.rewrite = false;
    await old?.close().catch(() => undefined);
  }
}

/** What one journal file says. */
export interface JournalContents {
  /** The calls open at its end: the last record of each call not ended. */
  readonly open: ReadonlyArray<{ readonly call: string; readonly record: unknown }>;
  /** The latest alive line (wall-clock ms), or null. */
  readonly aliveMs: number | null;
  /** Lines that are none of the three kinds (a torn last line, damage): 1-based line numbers. */
  readonly invalidLines: readonly number[];
}

/** Reads a journal's text (pure; never throws). */
export function readJournal(text: string): JournalContents {
  const open = new Map<string, unknown>();
  let aliveMs: number | null = null;
  const invalidLines: number[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    if (line.trim() === '') continue;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch {
      invalidLines.push(i + 1);
      continue;
    }
    const o = value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : null;
    if (o && typeof o.call === 'string' && o.call !== '' && 'record' in o) {
      open.delete(o.call);
      open.set(o.call, o.record);
    } else if (o && typeof o.ended === 'string') {
      open.delete(o.ended);
    } else if (o && typeof o.alive === 'number' && Number.isFinite(o.alive)) {
      aliveMs = Math.max(aliveMs ?? o.alive, o.alive);
    } else {
      invalidLines.push(i + 1);
    }
  }
  return { open: [...open].map(([call, record]) => ({ call, record })), aliveMs, invalidLines };
}

/** The journal files in `dir` (oldest first), and temporary files a rewrite left behind. */
export async function journalFiles(dir: string): Promise<{ journals: string[]; leftovers: string[] }> {
  const names = await fsp.readdir(dir).catch(() => [] as string[]);
  const journals = names.filter((n) => JOURNAL_FILE.test(n));
  journals.sort((a, b) => {
    const [, ta, sa] = JOURNAL_FILE.exec(a)!;
    const [, tb, sb] = JOURNAL_FILE.exec(b)!;
    return Number(ta) - Number(tb) || Number(sa) - Number(sb);
  });
  const leftovers = names.filter((n) => n.startsWith('calls-in-progress-') && n.endsWith('.jsonl.tmp'));
  return { journals: journals.map((n) => path.join(dir, n)), leftovers: leftovers.map((n) => path.join(dir, n)) };
}
