// Which lines of an old source survive in a new one, for the mutation scripts: a longest common
// subsequence of the two line lists, as old line number (1-based) → new line number.

/** @param {readonly string[]} a old lines @param {readonly string[]} b new lines @returns {Map<number, number>} */
export function lineMap(a, b) {
  const n = a.length;
  const m = b.length;
  const lcs = Array.from({ length: n + 1 }, () => new Uint16Array(m + 1));
  for (let i = n - 1; i >= 0; i--) for (let j = m - 1; j >= 0; j--) lcs[i][j] = a[i] === b[j] ? lcs[i + 1][j + 1] + 1 : Math.max(lcs[i + 1][j], lcs[i][j + 1]);
  const map = new Map();
  for (let i = 0, j = 0; i < n && j < m; ) {
    if (a[i] === b[j]) map.set(++i, ++j);
    else if (lcs[i + 1][j] >= lcs[i][j + 1]) i++;
    else j++;
  }
  return map;
}

/** A mutant's location in the new source when every line it spans was kept, in order; else null. */
export function relocate(map, location) {
  const start = map.get(location.start.line);
  if (start === undefined) return null;
  for (let line = location.start.line; line <= location.end.line; line++) {
    if (map.get(line) !== start + (line - location.start.line)) return null;
  }
  return { start: { line: start, column: location.start.column }, end: { line: start + (location.end.line - location.start.line), column: location.end.column } };
}
