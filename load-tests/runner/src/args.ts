/**
 * The command line of the runner's CLIs (`pnpm loadtest`, `pnpm bench`): `--name value`,
 * `--name=value` and `--flag`, checked against the command's known options. `--help` (`-h`) prints
 * the usage on stdout and exits 0 before anything starts; an unknown option, a stray word, a missing
 * value or any other UsageError prints the message and the usage on stderr and exits 2.
 */

/** How an option takes its value: `flag` never takes one, `value` needs one, `optional` takes the next word if it is not an option. */
export type OptionKind = "flag" | "value" | "optional";

export interface CommandSpec {
  /** How the command is invoked, for messages: `pnpm loadtest`. */
  name: string;
  /** The full usage text, every option with its default. */
  usage: string;
  /** The known options, without the leading `--`. `help` is always known. */
  options: Readonly<Record<string, OptionKind>>;
}

/** Bad input on the command line: reported with the usage, exit status 2. */
export class UsageError extends Error {
  override name = "UsageError";
}

/**
 * Parses `argv` against `spec.options`. Every problem is collected rather than thrown at the first, so
 * that `--help` anywhere still wins; with no `--help`, the first problem is thrown as a UsageError.
 */
export function parseArgs(argv: readonly string[], spec: Pick<CommandSpec, "options">): Map<string, string> {
  const out = new Map<string, string>();
  const problems: string[] = [];
  const unknown: string[] = [];
  const kindOf = (name: string): OptionKind | undefined => (name === "help" ? "flag" : spec.options[name]);
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] === "-h" ? "--help" : (argv[i] ?? "");
    if (a === "--") continue;
    if (!a.startsWith("--")) {
      problems.push(`unexpected argument ${a}`);
      continue;
    }
    const eq = a.indexOf("=");
    const name = eq > 0 ? a.slice(2, eq) : a.slice(2);
    const kind = kindOf(name);
    if (kind === undefined) unknown.push(`--${name}`);
    if (eq > 0) {
      if (kind === "flag") problems.push(`--${name} takes no value, got ${a.slice(eq + 1)}`);
      out.set(name, a.slice(eq + 1));
      continue;
    }
    const next = argv[i + 1];
    const hasValue = next !== undefined && !next.startsWith("--") && next !== "-h";
    if (kind === "flag" || !hasValue) {
      if (kind === "value") problems.push(`--${name} needs a value`);
      out.set(name, "true");
    } else {
      out.set(name, next);
      i++;
    }
  }
  if (out.has("help")) return out;
  if (unknown.length > 0) throw new UsageError(`unknown option ${unknown.join(", ")}`);
  if (problems[0] !== undefined) throw new UsageError(problems[0]);
  return out;
}

/** Writes `text` and exits; the write is awaited first, since stdout may be an asynchronous pipe. */
export async function exitWith(code: number, text: string): Promise<never> {
  const stream = code === 0 ? process.stdout : process.stderr;
  // A reader that stops early (`pnpm loadtest -- --help | head -3`) is no error.
  stream.once("error", () => process.exit(code));
  await new Promise<void>((done) => stream.write(text.endsWith("\n") ? text : `${text}\n`, () => done()));
  process.exit(code);
}

/** Exits 2 with `pnpm x: <message>` and the usage on stderr. */
export function exitWithUsage(spec: CommandSpec, message: string): Promise<never> {
  return exitWith(2, `${spec.name}: ${message}\n${spec.usage}`);
}

/**
 * The options of this process's command line; or the usage and an exit before anything starts
 * (see the top of this file). `check` runs the command's own checks on the options: a UsageError
 * it throws exits 2 with the usage as well.
 */
export async function readArgs<T = Map<string, string>>(
  argv: readonly string[],
  spec: CommandSpec,
  check?: (args: Map<string, string>) => T | Promise<T>,
): Promise<T> {
  try {
    const args = parseArgs(argv, spec);
    if (args.has("help")) return await exitWith(0, spec.usage);
    return check ? await check(args) : (args as T);
  } catch (e) {
    if (e instanceof UsageError) return exitWithUsage(spec, e.message);
    throw e;
  }
}

function numberOf(args: Map<string, string>, name: string): number | undefined {
  const v = args.get(name);
  if (v === undefined) return undefined;
  const n = v.trim() === "" ? NaN : Number(v);
  return Number.isFinite(n) ? n : NaN;
}

/** `--name n`, a non-negative number (`dflt` when absent). */
export function num(args: Map<string, string>, name: string, dflt: number): number {
  const n = numberOf(args, name);
  if (n === undefined) return dflt;
  if (Number.isNaN(n) || n < 0) throw new UsageError(`--${name} must be a non-negative number, got ${args.get(name)}`);
  return n;
}

/** `--name n`, a number above zero (`dflt` when absent). */
export function positive(args: Map<string, string>, name: string, dflt: number): number {
  const n = numberOf(args, name);
  if (n === undefined) return dflt;
  if (Number.isNaN(n) || n <= 0) throw new UsageError(`--${name} must be a number above 0, got ${args.get(name)}`);
  return n;
}

/** `--name a,b,c`: each a number above zero (`dflt` when absent). */
export function positiveList(args: Map<string, string>, name: string, dflt: readonly number[]): number[] {
  const v = args.get(name);
  if (v === undefined) return [...dflt];
  const parts = v.split(",");
  return parts.map((p) => {
    const n = p.trim() === "" ? NaN : Number(p);
    if (!Number.isFinite(n) || n <= 0) throw new UsageError(`each of --${name} must be a number above 0, got ${JSON.stringify(p)} in ${v}`);
    return n;
  });
}
