/**
 * The page of a list query read `limit + 1` rows deep (the extra row only says whether more
 * follow): its first `limit` rows, as items under `name`, and `next`, the cursor `cursorOf`
 * gives the page's last item, only when more rows follow.
 */
export function pageOf<K extends string, R, T>(
  name: K,
  rows: readonly R[],
  limit: number,
  item: (r: R) => T,
  cursorOf: (last: T) => string,
): { [P in K]: T[] } & { next?: string } {
  const items = rows.slice(0, limit).map((r) => item(r));
  const last = items[items.length - 1];
  const page = { [name]: items } as { [P in K]: T[] };
  return rows.length > limit && last !== undefined ? { ...page, next: cursorOf(last) } : page;
}
