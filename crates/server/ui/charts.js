// Small SVG charts, drawn from numbers with no library: a sparkline for the
// ingest panel and a versions-over-time chart for a table's history.

import {s} from './dom.js';

function scale(values, from, to) {
  const finite = values.filter(Number.isFinite);
  const lo = finite.length ? Math.min(...finite) : 0;
  const hi = finite.length ? Math.max(...finite) : 1;
  const span = hi - lo || 1;
  return (v) => from + ((v - lo) / span) * (to - from);
}

/**
 * A sparkline of `values` (oldest first; NaN leaves a gap), with `label` as
 * its accessible name. Missing data draws a flat baseline.
 */
export function sparkline(values, label, {width = 160, height = 32} = {}) {
  const pad = 2;
  const x = (i) => pad + (values.length > 1 ? (i / (values.length - 1)) * (width - 2 * pad) : 0);
  const y = scale([0, ...values], height - pad, pad);
  let path = '';
  let pen = false;
  values.forEach((v, i) => {
    if (!Number.isFinite(v)) {
      pen = false;
      return;
    }
    path += `${pen ? 'L' : 'M'}${x(i).toFixed(1)},${y(v).toFixed(1)}`;
    pen = true;
  });
  // The newest value as a dot, so a series of one sample shows too.
  const lastIndex = values.findLastIndex(Number.isFinite);
  return s('svg', {class: 'sparkline', viewBox: `0 0 ${width} ${height}`, width, height, role: 'img', 'aria-label': label},
    s('title', {}, label),
    s('line', {class: 'baseline', x1: pad, x2: width - pad, y1: y(0), y2: y(0)}),
    path ? s('path', {d: path}) : null,
    lastIndex >= 0 ? s('circle', {cx: x(lastIndex), cy: y(values[lastIndex]), r: 2}) : null);
}

/**
 * A table's versions over commit time: one dot per commit, joined as steps
 * (the version holds until the next commit). `commits` are
 * {version, timestamp (RFC 3339), operation}, any order.
 */
export function versionChart(commits, label, {width = 560, height = 160} = {}) {
  const points = commits
    .map((c) => ({version: Number(c.version), time: Date.parse(c.timestamp), operation: c.operation || ''}))
    .filter((p) => Number.isFinite(p.version) && Number.isFinite(p.time))
    .sort((a, b) => a.version - b.version);
  const left = 44;
  const right = 12;
  const top = 10;
  const bottom = 30;
  const x = scale(points.map((p) => p.time), left, width - right);
  const y = scale(points.map((p) => p.version), height - bottom, top);
  let steps = '';
  points.forEach((p, i) => {
    if (i === 0) steps += `M${x(p.time).toFixed(1)},${y(p.version).toFixed(1)}`;
    else steps += `H${x(p.time).toFixed(1)}V${y(p.version).toFixed(1)}`;
  });
  const first = points[0];
  const last = points[points.length - 1];
  // Seconds are enough unless the whole history fits in a minute.
  const short = points.length > 1 && last.time - first.time < 60_000;
  const stamp = (t) => {
    const text = new Date(t).toISOString().replace('T', ' ');
    return short ? text : text.replace(/\.\d+Z$/, 'Z');
  };
  return s('svg', {class: 'versions', viewBox: `0 0 ${width} ${height}`, role: 'img', 'aria-label': label},
    s('title', {}, label),
    s('line', {class: 'axis', x1: left, x2: width - right, y1: height - bottom, y2: height - bottom}),
    s('line', {class: 'axis', x1: left, x2: left, y1: top, y2: height - bottom}),
    first ? [
      s('text', {x: left - 6, y: y(first.version) + 4, 'text-anchor': 'end'}, `v${first.version}`),
      last.version !== first.version ? s('text', {x: left - 6, y: y(last.version) + 4, 'text-anchor': 'end'}, `v${last.version}`) : null,
      s('text', {x: left, y: height - 10, 'text-anchor': 'start'}, stamp(first.time)),
      last.time !== first.time ? s('text', {x: width - right, y: height - 10, 'text-anchor': 'end'}, stamp(last.time)) : null,
      s('path', {class: 'steps', d: steps}),
      points.map((p) => s('circle', {cx: x(p.time), cy: y(p.version), r: 3.5},
        s('title', {}, `version ${p.version} at ${stamp(p.time)}: ${p.operation}`))),
    ] : s('text', {x: width / 2, y: height / 2, 'text-anchor': 'middle'}, 'no commits'));
}
