import assert from 'node:assert/strict';
import { test } from 'node:test';
import { readSse, SseParser, type SseMessage } from '../src/sse';

const STREAM =
  ': ping\r\n' +
  'event: start\r\ndata: {"conversation_id":"c1"}\r\n\r\n' +
  'event: token\ndata: {"text":"héllo ✓ 😀"}\n\n' +
  ': ping\n\n' +
  'event: token\rdata: line1\rdata: line2\r\r' +
  'data: plain\n\n' +
  'event: end\ndata: {"conversation_id":"c2"}\n\n';

const EXPECTED: SseMessage[] = [
  { event: 'start', data: '{"conversation_id":"c1"}', id: undefined },
  { event: 'token', data: '{"text":"héllo ✓ 😀"}', id: undefined },
  { event: 'token', data: 'line1\nline2', id: undefined },
  { event: 'message', data: 'plain', id: undefined },
  { event: 'end', data: '{"conversation_id":"c2"}', id: undefined },
];

test('parses events, comments, multi-line data and every line ending in one chunk', () => {
  const p = new SseParser();
  assert.deepEqual(p.push(STREAM), EXPECTED);
});

test('gives the same events for every split point of the text', () => {
  for (let i = 0; i <= STREAM.length; i++) {
    const p = new SseParser();
    const got = [...p.push(STREAM.slice(0, i)), ...p.push(STREAM.slice(i))];
    assert.deepEqual(got, EXPECTED, `split at ${i}`);
  }
});

test('character-by-character feeding (CRLF split across chunks) gives the same events', () => {
  const p = new SseParser();
  const got: SseMessage[] = [];
  for (const ch of STREAM) got.push(...p.push(ch));
  assert.deepEqual(got, EXPECTED);
});

test('a message without its closing blank line is not dispatched', () => {
  const p = new SseParser();
  assert.deepEqual(p.push('event: token\ndata: {"text":"x"}\n'), []);
});

test('an event without data lines is not dispatched; a bare `data` line is empty data', () => {
  const p = new SseParser();
  assert.deepEqual(p.push('event: start\n\ndata\n\n'), [{ event: 'message', data: '', id: undefined }]);
});

function byteStream(bytes: Uint8Array, sizes: number[]): ReadableStream<Uint8Array> {
  let offset = 0;
  let k = 0;
  return new ReadableStream({
    pull(controller) {
      if (offset >= bytes.length) {
        controller.close();
        return;
      }
      const n = sizes[k++ % sizes.length];
      controller.enqueue(bytes.slice(offset, offset + n));
      offset += n;
    },
  });
}

test('readSse decodes UTF-8 split across byte chunks', async () => {
  const bytes = new TextEncoder().encode(STREAM);
  for (const sizes of [[1], [2], [3], [5, 1, 7], [bytes.length]]) {
    const got: SseMessage[] = [];
    for await (const m of readSse(byteStream(bytes, sizes))) got.push(m);
    assert.deepEqual(got, EXPECTED, `chunk sizes ${sizes.join(',')}`);
  }
});

test('readSse drops a trailing message that never got its blank line', async () => {
  const bytes = new TextEncoder().encode('event: token\ndata: {"text":"a"}\n\nevent: token\ndata: {"text":"cut"}\n');
  const got: SseMessage[] = [];
  for await (const m of readSse(byteStream(bytes, [bytes.length]))) got.push(m);
  assert.deepEqual(got, [{ event: 'token', data: '{"text":"a"}', id: undefined }]);
});

test('readSse cancels the body when the consumer stops early', async () => {
  let cancelled = false;
  const enc = new TextEncoder();
  const body = new ReadableStream<Uint8Array>({
    start(c) {
      c.enqueue(enc.encode('event: token\ndata: {"text":"a"}\n\n'));
    },
    cancel() {
      cancelled = true;
    },
  });
  for await (const m of readSse(body)) {
    assert.equal(m.event, 'token');
    break;
  }
  assert.equal(cancelled, true);
});
