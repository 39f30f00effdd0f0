/** Injected time source (STYLE.md convention 4): lifecycle and retry logic are tested without waiting. */
export interface Clock {
  now(): Date;
}

export const systemClock: Clock = { now: () => new Date() };
