/** One layer of a pull under way, as `cradle pull` shows it. */
export interface LayerProgress {
  digest: string;
  /** Compressed size, from the manifest. */
  size: number;
  /** Compressed bytes received so far. */
  received: number;
  state: 'waiting' | 'downloading' | 'done' | 'exists';
}

export interface PullProgress {
  /** The normalized reference being pulled. */
  image: string;
  /** When the pull began (ms since the epoch). */
  startedAt: number;
  layers: LayerProgress[];
}

/**
 * The pulls under way and how far each layer has come: the daemon's real
 * download, read by `cradle pull` through the verbose Status, so progress
 * never means a second download. Entries go when their pull ends.
 */
export class PullProgressBoard {
  private readonly pulls = new Map<number, PullProgress>();
  private next = 0;

  /** Tracks a pull of `image` with these layers; the returned handle updates it. */
  begin(image: string, layers: ReadonlyArray<{ digest: string; size: number }>) {
    const key = ++this.next;
    const entry: PullProgress = {
      image,
      startedAt: Date.now(),
      layers: layers.map((l) => ({ digest: l.digest, size: l.size, received: 0, state: 'waiting' })),
    };
    this.pulls.set(key, entry);
    const layer = (i: number) => entry.layers[i] as LayerProgress;
    return {
      downloading: (i: number) => {
        layer(i).state = 'downloading';
        layer(i).received = 0;
      },
      received: (i: number, bytes: number) => {
        layer(i).received = bytes;
      },
      finished: (i: number, fetched: boolean) => {
        layer(i).state = fetched ? 'done' : 'exists';
        layer(i).received = fetched ? layer(i).size : 0;
      },
      end: () => this.pulls.delete(key),
    };
  }

  list(): PullProgress[] {
    return [...this.pulls.values()];
  }
}
