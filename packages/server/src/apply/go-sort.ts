/**
 * Placeholder until the port of Go's sort.Sort lands: a stable sort, which is what Go's insertion sort
 * does for the ≤ 12 elements it handles directly.
 */
export function goSort<T>(data: T[], less: (a: T, b: T) => boolean): void {
  data.sort((a, b) => (less(a, b) ? -1 : less(b, a) ? 1 : 0));
}
