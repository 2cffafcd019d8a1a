/**
 * The reconnection delays of socket.io-client's Manager (4.x): the first attempt after
 * `reconnectionDelay` (1000 ms), each further one twice the previous, at most
 * `reconnectionDelayMax` (5000 ms), every delay moved up or down by up to `randomizationFactor`
 * (0.5) of itself so that clients dropped together do not come back together; reset once
 * connected, and after every close. Pure, so the tests check it without k6.
 */
export const SOCKET_IO_DEFAULTS = Object.freeze({ min: 1000, max: 5000, factor: 2, jitter: 0.5 });

/** `opts`: { min, max, factor, jitter }; `random`: a () => [0, 1) source (Math.random by default). */
export function createBackoff(opts, random) {
  const o = Object.assign({}, SOCKET_IO_DEFAULTS, opts || {});
  const rnd = random || Math.random;
  const jitter = o.jitter > 0 && o.jitter <= 1 ? o.jitter : 0;
  let attempts = 0;
  return {
    /** The delay before the next attempt, in ms; counts the attempt. */
    next() {
      let ms = o.min * Math.pow(o.factor, attempts);
      attempts++;
      if (jitter > 0) {
        const deviation = Math.floor(rnd() * jitter * ms);
        ms = rnd() < 0.5 ? ms - deviation : ms + deviation;
      }
      return Math.floor(Math.min(ms, o.max));
    },
    reset() {
      attempts = 0;
    },
    attempts() {
      return attempts;
    },
  };
}
