// Type declarations for the part of better-sqlite3 the daemon uses directly (the CDR spool lock);
// knex drives it for the embedded database without needing these.
declare module 'better-sqlite3' {
  namespace Database {
    interface Options {
      /** Milliseconds to wait for a lock held elsewhere before SQLITE_BUSY; 0 = fail at once. */
      timeout?: number;
      readonly?: boolean;
      fileMustExist?: boolean;
    }
    interface Database {
      exec(sql: string): this;
      close(): this;
      readonly open: boolean;
    }
  }
  const Database: new (filename: string, options?: Database.Options) => Database.Database;
  export = Database;
}
