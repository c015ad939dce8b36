/** How many items go in one message of a Stream* RPC. */
export const STREAM_CHUNK = 100;

/** The Stream* RPCs send every item once, in messages of at most `size` items. */
export function* chunked<T>(items: readonly T[], size = STREAM_CHUNK): Generator<T[]> {
  for (let i = 0; i < items.length; i += size) yield items.slice(i, i + size);
}
