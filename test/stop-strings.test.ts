// The stop-string matcher over streamed pieces: immediate release of safe text, holding back possible
// beginnings, stop strings spanning pieces, false partial matches and the final flush.
import { describe, expect, it } from 'vitest';
import { StopStringMatcher } from '../src/engine/stop-strings.js';

/** Feeds pieces one by one; returns what each push emitted, whether it stopped, and the flush. */
function run(stops: string[], pieces: string[]) {
  const m = new StopStringMatcher(stops);
  const emits: string[] = [];
  let stoppedAt = -1;
  pieces.forEach((p, i) => {
    const r = m.push(p);
    emits.push(r.emit);
    if (r.stopped && stoppedAt < 0) stoppedAt = i;
  });
  return { emits, stoppedAt, flush: m.flush(), matcher: m };
}

describe('StopStringMatcher', () => {
  it('emits text that cannot start a stop string at once', () => {
    const r = run(['STOP'], ['Hello', ' world', '!']);
    expect(r.emits).toEqual(['Hello', ' world', '!']);
    expect(r.stoppedAt).toBe(-1);
    expect(r.flush).toBe('');
  });

  it('stops on a stop string split over three pieces and never prints it', () => {
    const r = run(['<|end|>'], ['The answer is 42.<|', 'en', 'd|> and more']);
    expect(r.emits).toEqual(['The answer is 42.', '', '']);
    expect(r.stoppedAt).toBe(2);
    expect(r.matcher.matched).toBe('<|end|>');
    expect(r.flush).toBe('');
    expect(r.matcher.push('later')).toEqual({ emit: '', stopped: true });
  });

  it('releases a held prefix when the next piece shows it was a false partial match', () => {
    const r = run(['<|end|>'], ['a <|e', 'nvelope', ' b']);
    expect(r.emits).toEqual(['a ', '<|envelope', ' b']);
    expect(r.stoppedAt).toBe(-1);
  });

  it('emits the text before a stop string inside one piece', () => {
    const r = run(['\n\n'], ['first line\n\nsecond']);
    expect(r.emits).toEqual(['first line']);
    expect(r.stoppedAt).toBe(0);
  });

  it('holds the longest possible beginning and finds a match that starts inside the held text', () => {
    // "aab": after "aa" the held text is "aa"; the stop string starts at its second character.
    const r = run(['ab'], ['xa', 'a', 'b!']);
    expect(r.emits).toEqual(['x', 'a', '']);
    expect(r.stoppedAt).toBe(2);
  });

  it('picks the earliest of several stop strings', () => {
    const r = run(['World', 'lo W'], ['Hello World']);
    expect(r.emits).toEqual(['Hel']);
    expect(r.matcher.matched).toBe('lo W');
  });

  it('flushes held text at the end of the stream', () => {
    const r = run(['###'], ['done #', '#']);
    expect(r.emits).toEqual(['done ', '']);
    expect(r.flush).toBe('##');
    expect(r.matcher.flush()).toBe('');
  });

  it('passes everything through without stop strings, and ignores empty ones', () => {
    expect(run([], ['a', 'b']).emits).toEqual(['a', 'b']);
    expect(run([''], ['a', 'b']).emits).toEqual(['a', 'b']);
  });

  it('handles stop strings made of emoji (surrogate pairs)', () => {
    const r = run(['🦙🦙'], ['x🦙', '🦙y']);
    expect(r.emits).toEqual(['x', '']);
    expect(r.stoppedAt).toBe(1);
  });
});
