/** Running a commander program as a subcommand: parse argv, and turn commander's own exits (--help, bad flags) into exit codes. */
import { CommanderError } from 'commander';
import type { Command } from 'commander';

/** Parse `argv` with `program` (whose commands use exitOverride); returns commander's exit code, or undefined when it ran. */
export async function parseCommand(program: Command, argv: string[]): Promise<number | undefined> {
  try {
    await program.parseAsync(argv, { from: 'user' });
    return undefined;
  } catch (e) {
    if (e instanceof CommanderError) return e.exitCode;
    throw e;
  }
}
