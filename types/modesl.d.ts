// Type declarations for the parts of modesl 1.2.1 (plain JavaScript, no types shipped) we use.
declare module 'modesl' {
  import type { Socket } from 'node:net';

  type Listener = (...args: never[]) => void;

  /** modesl's ESL connection (lib/esl/Connection.js); an EventEmitter2 with '::' delimiters. */
  export class Connection {
    /** Outbound mode: FreeSWITCH connected to us. */
    constructor(socket: Socket, readyCb?: () => void);
    /** Inbound mode: connect to FreeSWITCH's event socket and authenticate on its auth/request. */
    constructor(host: string, port: number, password: string, readyCb?: () => void);
    password: string;
    authed: boolean;
    apiCallbackQueue: Array<Listener | undefined>;
    auth(cb?: (err: Error | null, reply: unknown) => void): void;
    socket: Socket | null;
    channelData: unknown;
    connecting: boolean;
    cmdCallbackQueue: Array<Listener | undefined>;
    send(command: string, args?: Record<string, string> | null): void;
    sendRecv(command: string, args?: Record<string, string> | Listener | null, cb?: Listener): void;
    subscribe(events: string[], cb?: Listener): void;
    getInfo(): unknown;
    disconnect(): void;
    on(event: string, listener: Listener): this;
    once(event: string, listener: Listener): this;
    off(event: string, listener: Listener): this;
    removeListener(event: string, listener: Listener): this;
    removeAllListeners(event?: string): this;
    emit(event: string, ...args: unknown[]): boolean;
    protected _onConnect(): void;
    protected _onEvent(event: unknown, headers: Record<string, string>, body: string): void;
    protected _onError(err: Error): void;
  }
}
