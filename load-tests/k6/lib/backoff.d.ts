/** Types of `backoff.js` for the tests (k6 reads the plain JavaScript). */
export interface BackoffOptions {
  min?: number;
  max?: number;
  factor?: number;
  jitter?: number;
}
export declare const SOCKET_IO_DEFAULTS: Readonly<Required<BackoffOptions>>;
export interface Backoff {
  next(): number;
  reset(): void;
  attempts(): number;
}
export declare function createBackoff(opts?: BackoffOptions, random?: () => number): Backoff;
