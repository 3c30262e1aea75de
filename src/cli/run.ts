/**
 * The common tail of the operator commands: run, exit with the command's code; a configuration
 * error exits 2 with its message, anything else 1 (2 where the command says so) with the stack.
 */
import { ConfigError } from '../config';

export function runCommand(name: string, command: () => Promise<number>, hint: (message: string) => string = () => ''): void {
  command().then(
    (code) => process.exit(code),
    (err: unknown) => {
      const message = err instanceof ConfigError ? err.message : ((err as Error).stack ?? String(err));
      process.stderr.write(`${name}: ${message}${hint((err as Error).message ?? '')}\n`);
      process.exit(err instanceof ConfigError ? 2 : 1);
    },
  );
}
