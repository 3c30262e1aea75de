/** A database error in one line: its driver's code, if any, and its message (`SQLITE_CANTOPEN: unable to open database file`). */
export function describeDbError(err: unknown): string {
  const e = err as { code?: unknown; message?: unknown } | null;
  return `${typeof e?.code === 'string' ? `${e.code}: ` : ''}${typeof e?.message === 'string' ? e.message : String(err)}`;
}
