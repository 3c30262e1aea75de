// Type declarations for the part of better-sqlite3 the daemon uses directly (the CDR spool lock,
// the statement cache and its tests); knex drives it for the embedded database without these.
declare module 'better-sqlite3' {
  namespace Database {
    interface Options {
      /** Milliseconds to wait for a lock held elsewhere before SQLITE_BUSY; 0 = fail at once. */
      timeout?: number;
      readonly?: boolean;
      fileMustExist?: boolean;
    }
    interface Statement {
      all(...params: unknown[]): unknown[];
      run(...params: unknown[]): { changes: number; lastInsertRowid: number | bigint };
      /** BigInt for INTEGER columns (true) or JS numbers (false) for this statement. */
      safeIntegers(on?: boolean): this;
      readonly reader: boolean;
    }
    interface Database {
      exec(sql: string): this;
      prepare(sql: string): Statement;
      close(): this;
      readonly open: boolean;
      /** A transaction is open on this connection (BEGIN without its COMMIT or ROLLBACK yet). */
      readonly inTransaction: boolean;
    }
  }
  const Database: new (filename: string, options?: Database.Options) => Database.Database;
  export = Database;
}
