/**
 * `synack <command>`: dispatch to the command modules (one file per command).
 */
import { benchCommand } from './bench.js';
import { demoCommand } from './demo.js';
import { drawCommand } from './draw.js';
import { drillCommand } from './drill.js';
import { gatewayCommand } from './gateway.js';
import { getCommand } from './get.js';
import { serveCommand } from './serve.js';
import { uiCommand } from './ui.js';
import { EXIT_OK, EXIT_USAGE, type CliIO } from './io.js';

type Command = (args: string[], io: CliIO) => number | Promise<number>;

/** The contract's commands (CONTRACT.md, CLI). */
const COMMANDS: Record<string, { summary: string; run: Command }> = {
  demo: { summary: 'two stacks over an in-memory link, in virtual time: the ladder diagram', run: demoCommand },
  draw: { summary: 'ladder diagram and inferred states from a pcap/pcapng capture', run: drawCommand },
  drill: { summary: 'packetdrill-compatible test runner, in virtual time', run: drillCommand },
  serve: { summary: 'serve through the stack on a Linux TUN or TAP device', run: serveCommand },
  get: { summary: 'HTTP/1.1 GET through the stack on a TUN or TAP device', run: getCommand },
  gateway: { summary: 'a synack router for a guest behind a TAP device: ARP/NDP, RAs, DHCP, DNS', run: gatewayCommand },
  bench: { summary: 'benchmarks beside the Linux kernel', run: benchCommand },
  ui: { summary: 'the interactive page on 127.0.0.1', run: uiCommand },
};

export const PROGRAM_HELP = `Usage: synack <command> [options]

A TCP/IP stack in TypeScript that shows what it does.

Commands:
${Object.entries(COMMANDS)
  .map(([name, c]) => `  ${name.padEnd(9)}${c.summary}`)
  .join('\n')}

Run 'synack <command> --help' for a command's options.
Exit status: 0 success, 1 a failed check or run, 2 bad usage.
`;

export async function runCli(argv: string[], io: CliIO): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    io.stdout(PROGRAM_HELP);
    return name === undefined ? EXIT_USAGE : EXIT_OK;
  }
  const command = COMMANDS[name];
  if (command === undefined || !Object.hasOwn(COMMANDS, name)) {
    io.stderr(`synack: unknown command '${name}' (commands: ${Object.keys(COMMANDS).join(', ')})\n`);
    return EXIT_USAGE;
  }
  return command.run(rest, io);
}
