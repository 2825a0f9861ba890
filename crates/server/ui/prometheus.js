// A parser for the Prometheus text exposition format (version 0.0.4), as
// GET /metrics answers: enough for counters, gauges and histograms.

function parseLabels(text) {
  const labels = {};
  let i = 0;
  while (i < text.length) {
    const eq = text.indexOf('=', i);
    if (eq < 0) break;
    const name = text.slice(i, eq).trim().replace(/^,/, '').trim();
    let j = eq + 1;
    if (text[j] !== '"') break;
    j += 1;
    let value = '';
    while (j < text.length && text[j] !== '"') {
      if (text[j] === '\\' && j + 1 < text.length) {
        const next = text[j + 1];
        value += next === 'n' ? '\n' : next;
        j += 2;
      } else {
        value += text[j];
        j += 1;
      }
    }
    labels[name] = value;
    i = j + 1;
    while (text[i] === ',' || text[i] === ' ') i += 1;
  }
  return labels;
}

/** Every sample of `text`: [{name, labels: {…}, value}]. Comments and malformed lines are skipped. */
export function parseMetrics(text) {
  const samples = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    let name;
    let labels = {};
    let rest;
    const brace = line.indexOf('{');
    const space = line.indexOf(' ');
    if (brace >= 0 && (space < 0 || brace < space)) {
      const close = line.lastIndexOf('}');
      if (close < brace) continue;
      name = line.slice(0, brace);
      labels = parseLabels(line.slice(brace + 1, close));
      rest = line.slice(close + 1).trim();
    } else {
      if (space < 0) continue;
      name = line.slice(0, space);
      rest = line.slice(space + 1).trim();
    }
    const valueText = rest.split(/\s+/)[0];
    const value = valueText === '+Inf' ? Infinity : valueText === '-Inf' ? -Infinity : Number(valueText);
    if (valueText === '' || Number.isNaN(value) && valueText !== 'NaN') continue;
    samples.push({name, labels, value});
  }
  return samples;
}

/** Sum of the samples named `name` per value of `label`: {labelValue: sum}. */
export function sumBy(samples, name, label) {
  const out = {};
  for (const sample of samples) {
    if (sample.name !== name) continue;
    const key = sample.labels[label];
    if (key === undefined) continue;
    out[key] = (out[key] || 0) + sample.value;
  }
  return out;
}
