import { TypeCompiler, type TypeCheck } from "@sinclair/typebox/compiler";
import type { Static, TSchema } from "@sinclair/typebox";

/** The outcome of validating hostile input. */
export type Validated<T> = { ok: true; value: T } | { ok: false; reason: string };

/**
 * Compiles a schema once and returns a function that checks a value against it. The reason names
 * the first failing path and is safe to return to the client.
 */
export function compileValidator<S extends TSchema>(schema: S): (value: unknown) => Validated<Static<S>> {
  const check: TypeCheck<S> = TypeCompiler.Compile(schema);
  return (value) => {
    if (check.Check(value)) return { ok: true, value };
    const first = check.Errors(value).First();
    const where = first?.path ? first.path : "payload";
    return { ok: false, reason: `${where}: ${first?.message ?? "invalid"}` };
  };
}
