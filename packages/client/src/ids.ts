// The subpath, not the package's index: the index brings the server's validators (TypeBox, about
// 46 KiB) into every page that bundles the SDK.
export { newClientMessageId } from "@chat/protocol/ids";

/**
 * The `sub` of a JWT, read without verifying it (the server verifies): the SDK only uses it to
 * know which messages and typing events are the user's own. Undefined when the token is not a JWT.
 */
export function subjectOf(token: string): string | undefined {
  const part = token.split(".")[1];
  if (!part) return undefined;
  try {
    const b64 = part.replace(/-/g, "+").replace(/_/g, "/").padEnd(Math.ceil(part.length / 4) * 4, "=");
    const bin = atob(b64);
    const bytes = Uint8Array.from(bin, (c) => c.charCodeAt(0));
    const claims = JSON.parse(new TextDecoder().decode(bytes)) as { sub?: unknown };
    return typeof claims.sub === "string" ? claims.sub : undefined;
  } catch {
    return undefined;
  }
}
