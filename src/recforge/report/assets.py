"""The report page's inline CSS and JavaScript (nothing is fetched).

``CHART_STYLE`` styles the charts; it is its own ``<style id="chart-css">`` because a saved chart (SVG, PNG) takes
it along. The script sorts tables, hides and shows runs, saves charts (SVG; PNG by drawing the SVG onto a canvas)
and tables (CSV, LaTeX) with a download link, and writes on ``<html>``: ``data-js-errors`` (a JSON list of script
errors), ``data-overflow-x`` (how far the page is wider than the window, in pixels; 0 when it fits),
``data-page-height`` and ``data-report-ready="1"`` at its end.

Opened with ``#selftest``, the page checks what a browser alone can tell and writes it down: on each chart's box
``data-plot-box`` (the plot's x, y, width, height in page pixels), ``data-text-outside`` (texts that leave the
chart), ``data-legend-overlaps``, ``data-mark-over-plot``, ``data-svg-export`` ("ok" when the saved SVG parses)
and ``data-png-coloured`` (coloured pixels in the plot of the saved PNG); on each table button
``data-roundtrip`` ("ok" when the saved file holds its text); then ``data-selftest="done"`` on ``<html>``.
"""

CHART_STYLE = """
svg.chart { display: block; width: 100%; height: auto;
            font: 11px system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; }
svg.chart .background { fill: #fff; }
svg.chart .title { font-size: 14px; font-weight: 600; fill: #222; } svg.chart .note { fill: #a33; }
svg.chart .frame { fill: none; stroke: #bbb; } svg.chart .grid { stroke: #eee; }
svg.chart .axis-tick { stroke: #999; } svg.chart .tick { fill: #555; }
svg.chart .axis-label { fill: #333; font-size: 12px; } svg.chart .legend text { fill: #333; }
svg.chart .empty { fill: #999; font-size: 13px; text-anchor: middle; }
svg.chart polyline { fill: none; stroke-width: 1.8; } svg.chart .series circle { stroke: none; }
svg.chart .series circle.single { stroke: #fff; stroke-width: 1.5; }
svg.chart .series circle.best { fill: none; stroke-width: 1.8; }
svg.chart .marker line, svg.chart .legend line.dash { stroke-dasharray: 4 3; stroke-width: 1.3; }
svg.chart .whisker { stroke: #222; fill: none; stroke-width: 1.3; }
svg.chart .seed { fill: #fff; stroke: #222; stroke-width: 1; }
svg.chart .hidden { display: none; }
"""

STYLE = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #222; margin: 0 auto;
       max-width: 1600px; padding: 0 24px 48px; }
h1 { font-size: 22px; margin: 20px 0 4px; } h2 { font-size: 18px; margin: 28px 0 8px; border-bottom: 1px solid #ddd; }
h3 { font-size: 15px; margin: 16px 0 6px; color: #444; }
.meta, .empty, footer { color: #666; } .notes { color: #a33; }
nav a { margin-right: 14px; }
dl.summary { display: grid; grid-template-columns: max-content auto; gap: 2px 16px; margin: 8px 0; }
dl.summary dt { color: #666; } dl.summary dd { margin: 0; }
.charts { display: grid; grid-template-columns: repeat(auto-fill, minmax(600px, 1fr)); gap: 16px; }
figure.chart-box { margin: 0; border: 1px solid #e3e3e3; border-radius: 4px; padding: 6px; min-width: 0; }
.tools { display: flex; justify-content: flex-end; gap: 6px; margin-top: 2px; }
button { font: 12px system-ui, sans-serif; padding: 1px 8px; border: 1px solid #bbb; border-radius: 3px;
         background: #f7f7f7; cursor: pointer; } button:hover { background: #e9eef6; }
.hidden { display: none; }
.swatch { display: inline-block; width: 12px; height: 12px; border-radius: 2px; margin-right: 5px;
          vertical-align: -1px; }
label.run-key { margin-right: 14px; white-space: nowrap; display: inline-block; }
table { border-collapse: separate; border-spacing: 0; margin: 0; font-size: 13px; }
th, td { border-bottom: 1px solid #eee; padding: 3px 10px; text-align: left; vertical-align: top; }
thead th { border-bottom: 2px solid #ccc; background: #f6f6f6; position: sticky; top: 0; z-index: 2; }
td.num { text-align: right; font-variant-numeric: tabular-nums; } td.best { font-weight: 700; }
table.sortable thead th { cursor: pointer; } table.sortable th[aria-sort=ascending]::after { content: " \\25b2"; }
table.sortable th[aria-sort=descending]::after { content: " \\25bc"; }
th .group { display: block; font-weight: normal; color: #777; font-size: 11px; }
.table-box { overflow: auto; max-width: 100%; max-height: 600px; border: 1px solid #ccc; border-radius: 4px;
             margin: 6px 0; width: max-content; }
.table-tools { display: flex; align-items: center; gap: 8px; flex-wrap: wrap; }
table.runs td, table.runs th { white-space: nowrap; }
table.runs thead th { white-space: normal; vertical-align: bottom; }
table.runs th.label { position: sticky; left: 0; z-index: 1; background: #fff; font-weight: normal;
                      box-shadow: inset -1px 0 #ccc; }
table.runs thead th.label { z-index: 3; background: #f6f6f6; font-weight: 600; }
table.runs td.params { white-space: normal; min-width: 200px; max-width: 320px; font: 12px ui-monospace, monospace;
                       word-break: break-word; }
td.state.complete { color: #2a7a2a; } td.state.pruned { color: #a65f00; } td.state.fail { color: #b3261e; }
tr.best-trial td.state::after { content: " (best)"; font-weight: 600; }
tr.best-trial th.label { background: #f1f7ec; }
table.config td { font-family: ui-monospace, monospace; font-size: 12px; max-width: 420px; word-break: break-word; }
table.config tr.changed th { background: #fff4d6; } table.config td.changed { background: #ffe7a8; font-weight: 600; }
table.config tr.varies th { box-shadow: inset 3px 0 #4e79a7; } table.config td.default { color: #888; }
table.config.only-changed tr:not(.changed):not(.varies) { display: none; }
table.results, table.timings { margin: 6px 0; }
"""

# Runs first, before anything else can fail: every error goes into <html data-js-errors>.
ERROR_RECORDER = """
(function () {
  var root = document.documentElement, errors = [];
  function record(message) {
    errors.push(String(message));
    root.setAttribute('data-js-errors', JSON.stringify(errors));
  }
  window.addEventListener('error', function (event) { record(event.message || 'error'); });
  window.addEventListener('unhandledrejection', function (event) { record('unhandled rejection: ' + event.reason); });
  var original = console.error;
  console.error = function () {
    record(Array.prototype.join.call(arguments, ' '));
    original.apply(console, arguments);
  };
})();
"""

SCRIPT = """
(function () {
  var root = document.documentElement, NS = 'http://www.w3.org/2000/svg';
  function value(cell, numeric) {
    var raw = cell.getAttribute('data-value');
    if (numeric) { return raw === null ? NaN : parseFloat(raw); }
    return (raw !== null ? raw : cell.textContent).toLowerCase();
  }
  document.querySelectorAll('table.sortable').forEach(function (table) {
    var headers = table.querySelectorAll('thead th');
    headers.forEach(function (th, index) {
      th.addEventListener('click', function () {
        var numeric = th.getAttribute('data-sort') === 'number';
        var ascending = th.getAttribute('aria-sort') !== 'ascending';
        headers.forEach(function (other) { other.removeAttribute('aria-sort'); });
        th.setAttribute('aria-sort', ascending ? 'ascending' : 'descending');
        var body = table.tBodies[0], rows = Array.prototype.slice.call(body.rows);
        rows.sort(function (a, b) {
          var x = value(a.cells[index], numeric), y = value(b.cells[index], numeric);
          if (numeric && (isNaN(x) || isNaN(y))) { return isNaN(x) - isNaN(y); }
          return (x < y ? -1 : x > y ? 1 : 0) * (ascending ? 1 : -1);
        });
        rows.forEach(function (row) { body.appendChild(row); });
      });
    });
  });
  var only = document.getElementById('only-changed'), config = document.querySelector('table.config');
  if (only && config) {
    only.addEventListener('change', function () { config.classList.toggle('only-changed', only.checked); });
  }
  document.querySelectorAll('input.run-toggle').forEach(function (box) {
    box.addEventListener('change', function () {
      document.querySelectorAll('svg.chart [data-run]').forEach(function (element) {
        if (element.getAttribute('data-run') === box.value) { element.classList.toggle('hidden', !box.checked); }
      });
    });
  });
  function save(name, data, type) {
    var blob = data instanceof Blob ? data : new Blob([data], {type: type});
    var url = URL.createObjectURL(blob), link = document.createElement('a');
    link.href = url; link.download = name; document.body.appendChild(link); link.click(); link.remove();
    setTimeout(function () { URL.revokeObjectURL(url); }, 2000);
  }
  var chartCss = document.getElementById('chart-css').textContent;
  function standalone(svg) {
    var clone = svg.cloneNode(true), style = document.createElementNS(NS, 'style');
    style.textContent = chartCss;
    clone.insertBefore(style, clone.firstChild);
    return '<?xml version="1.0" encoding="UTF-8"?>\\n' + new XMLSerializer().serializeToString(clone);
  }
  function canvasOf(svg, done) {
    var view = svg.viewBox.baseVal, image = new Image(), scale = 2;
    image.onload = function () {
      var canvas = document.createElement('canvas');
      canvas.width = view.width * scale; canvas.height = view.height * scale;
      var context = canvas.getContext('2d');
      context.fillStyle = '#fff'; context.fillRect(0, 0, canvas.width, canvas.height);
      context.drawImage(image, 0, 0, canvas.width, canvas.height);
      done(canvas, scale);
    };
    image.onerror = function () { console.error('a chart could not be drawn as PNG'); done(null, scale); };
    image.src = 'data:image/svg+xml;charset=utf-8,' + encodeURIComponent(standalone(svg));
  }
  document.querySelectorAll('figure.chart-box').forEach(function (figure) {
    var svg = figure.querySelector('svg.chart'), name = figure.getAttribute('data-name') || 'chart';
    figure.querySelector('.export-svg').addEventListener('click', function () {
      save(name + '.svg', standalone(svg), 'image/svg+xml');
    });
    figure.querySelector('.export-png').addEventListener('click', function () {
      canvasOf(svg, function (canvas) {
        if (canvas) { canvas.toBlob(function (blob) { save(name + '.png', blob); }, 'image/png'); }
      });
    });
  });
  document.querySelectorAll('button.export-text').forEach(function (button) {
    button.addEventListener('click', function () {
      save(button.getAttribute('data-file'), button.getAttribute('data-text'), button.getAttribute('data-type'));
    });
  });
  function measure() {
    root.setAttribute('data-overflow-x', String(root.scrollWidth - root.clientWidth));
    root.setAttribute('data-page-height', String(root.scrollHeight));
  }
  measure();
  window.addEventListener('resize', measure);
  if (location.hash === '#selftest') { selftest(canvasOf, standalone); }
  root.setAttribute('data-report-ready', '1');
})();

function selftest(canvasOf, standalone) {
  var root = document.documentElement, figures = document.querySelectorAll('figure.chart-box');
  var pending = figures.length + 1;
  function finished() { pending -= 1; if (pending === 0) { root.setAttribute('data-selftest', 'done'); } }
  function meets(a, b) {
    return a.left < b.right - 0.5 && b.left < a.right - 0.5 && a.top < b.bottom - 0.5 && b.top < a.bottom - 0.5;
  }
  figures.forEach(function (figure) {
    var svg = figure.querySelector('svg.chart'), whole = svg.getBoundingClientRect();
    var frame = svg.querySelector('rect.frame'), plot = frame.getBoundingClientRect(), outside = 0, overlaps = 0;
    figure.setAttribute('data-plot-box', [plot.left + window.scrollX, plot.top + window.scrollY, plot.width,
      plot.height].map(Math.round).join(','));
    svg.querySelectorAll('text').forEach(function (text) {
      var box = text.getBoundingClientRect();
      if (box.left < whole.left - 1 || box.right > whole.right + 1 || box.top < whole.top - 1 ||
          box.bottom > whole.bottom + 1) { outside += 1; }
    });
    var items = Array.prototype.map.call(svg.querySelectorAll('.legend-item'), function (item) {
      return item.getBoundingClientRect();
    });
    items.forEach(function (a, i) {
      items.slice(i + 1).forEach(function (b) { if (meets(a, b)) { overlaps += 1; } });
    });
    var marks = Array.prototype.filter.call(svg.querySelectorAll('.marker-text'), function (text) {
      return meets(text.getBoundingClientRect(), plot);
    });
    figure.setAttribute('data-text-outside', String(outside));
    figure.setAttribute('data-legend-overlaps', String(overlaps));
    figure.setAttribute('data-mark-over-plot', String(marks.length));
    var parsed = new DOMParser().parseFromString(standalone(svg), 'image/svg+xml');
    var good = !parsed.querySelector('parsererror') && parsed.documentElement.querySelector('style');
    figure.setAttribute('data-svg-export', good ? 'ok' : 'error');
    var view = svg.viewBox.baseVal, left = +svg.getAttribute('data-left'), top = +svg.getAttribute('data-top');
    var right = +svg.getAttribute('data-right'), bottom = +svg.getAttribute('data-bottom');
    canvasOf(svg, function (canvas, scale) {
      if (canvas) {
        var pixels = canvas.getContext('2d').getImageData(left * scale, top * scale, (right - left) * scale,
          (bottom - top) * scale).data, coloured = 0;
        for (var i = 0; i < pixels.length; i += 4) {
          var high = Math.max(pixels[i], pixels[i + 1], pixels[i + 2]);
          if (high - Math.min(pixels[i], pixels[i + 1], pixels[i + 2]) > 40) { coloured += 1; }
        }
        figure.setAttribute('data-png-coloured', String(coloured));
        figure.setAttribute('data-png-size', canvas.width + 'x' + canvas.height + ':' +
          canvas.toDataURL('image/png').length);
      }
      finished();
    });
  });
  var buttons = document.querySelectorAll('button.export-text'), texts = [];
  buttons.forEach(function (button) {
    var text = button.getAttribute('data-text');
    texts.push(new Blob([text], {type: button.getAttribute('data-type')}).text().then(function (back) {
      button.setAttribute('data-roundtrip', back === text ? 'ok' : 'differs');
    }));
  });
  Promise.all(texts).then(finished);
}
"""
