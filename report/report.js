
// The timeline of a mapflow report: draws the attempts in #report-data (shape: timeline in
// report/timeline.go) on the canvas, one lane per host and worker slot, shows a bar's task on
// hover, zooms on a dragged range, and keeps what it drew in the DOM: data-drawn counts on the
// canvas and, up to TWIN_MAX attempts, one item per bar in #timeline-bars (its accessible twin).
// User values reach the page through textContent and data attributes only, never as markup.
(function () {
  "use strict";
  var TWIN_MAX = 5000;
  var FONT = "12px system-ui, sans-serif";
  var data = JSON.parse(document.getElementById("report-data").textContent);
  var tl = data.timeline;
  var canvas = document.getElementById("timeline");
  if (!tl || !canvas || !tl.bars || !tl.bars.task || tl.bars.task.length === 0) {
    return;
  }
  var t0 = performance.now();
  var box = document.getElementById("timeline-box");
  var wrap = document.getElementById("timeline-wrap");
  var tip = document.getElementById("timeline-tip");
  var twins = document.getElementById("timeline-bars");
  var ctx = canvas.getContext("2d");
  var sel = document.createElement("div");
  sel.className = "sel";
  sel.hidden = true;
  wrap.appendChild(sel);

  // The columns, decoded: starts and task rows are stored as differences.
  var b = tl.bars, n = b.task.length, span = tl.span;
  var start = new Float64Array(n), dur = new Float64Array(n), row = new Int32Array(n);
  var lane = Int32Array.from(b.lane), status = Int32Array.from(b.status);
  var s = 0, r = 0, i, retried = false;
  for (i = 0; i < n; i++) {
    retried = retried || b.attempt[i] > 1;
    s += b.start[i];
    start[i] = s;
    r += b.task[i];
    row[i] = r;
    dur[i] = b.dur[i];
  }
  var lanes = tl.lanes, nl = lanes.length;
  // byLane lists each lane's bars in start order, lane l at laneAt[l] .. laneAt[l+1].
  var laneAt = new Int32Array(nl + 1), byLane = new Int32Array(n);
  for (i = 0; i < n; i++) {
    laneAt[lane[i] + 1]++;
  }
  for (i = 0; i < nl; i++) {
    laneAt[i + 1] += laneAt[i];
  }
  var fill = laneAt.slice(0, nl);
  for (i = 0; i < n; i++) {
    byLane[fill[lane[i]]++] = i;
  }

  // Colours come from the page's style, the one place they are set.
  var statuses = tl.statuses, colors = [];
  statuses.forEach(function (st) {
    var probe = document.createElement("span");
    probe.className = "sw s-" + st;
    probe.style.display = "none";
    document.body.appendChild(probe);
    colors.push(getComputedStyle(probe).backgroundColor);
    probe.remove();
  });
  // Failed bars are drawn last, so that a dense run of others cannot hide them.
  var order = statuses.map(function (_, k) { return k; });
  order.sort(function (a, c) { return (statuses[a] === "Failed") - (statuses[c] === "Failed"); });

  function taskName(rw) {
    var t = tl.tasks;
    if (t.names) {
      return t.names[rw];
    }
    return (t.prefix || "") + (t.index ? t.index[rw] : rw);
  }
  function taskParams(rw) {
    var p = tl.tasks.params ? tl.tasks.params[rw] : undefined;
    if (p === undefined) {
      return "";
    }
    return typeof p === "string" ? p : JSON.stringify(p);
  }
  function errText(k) {
    return b.err[k] ? tl.errors[b.err[k] - 1] : "";
  }

  function fmtDur(us) {
    if (us < 1000) {
      return Math.round(us) + " µs";
    }
    if (us < 1e6) {
      return (us / 1e3).toFixed(1) + " ms";
    }
    if (us < 60e6) {
      return (us / 1e6).toFixed(2) + " s";
    }
    var sec = Math.floor(us / 1e6);
    if (sec < 3600) {
      return Math.floor(sec / 60) + "m " + String(sec % 60).padStart(2, "0") + "s";
    }
    return Math.floor(sec / 3600) + "h " + String(Math.floor(sec / 60) % 60).padStart(2, "0") + "m";
  }
  var startMs = Date.parse(tl.start);
  function clock(us) {
    return new Date(startMs + us / 1000).toISOString().slice(11, 23) + " UTC";
  }

  // Axis ticks: 1-2-5 steps below a second, then round minutes and hours.
  var LONG = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400];
  function tickStep(range, px) {
    var target = range / Math.max(1, Math.floor(px / 110));
    if (target > 1e6) {
      for (var k = 0; k < LONG.length; k++) {
        if (LONG[k] * 1e6 >= target) {
          return LONG[k] * 1e6;
        }
      }
      return Math.ceil(target / 86400e6) * 86400e6;
    }
    var p = Math.pow(10, Math.floor(Math.log10(Math.max(target, 1))));
    var m = target / p;
    return (m <= 1 ? 1 : m <= 2 ? 2 : m <= 5 ? 5 : 10) * p;
  }
  function tickLabel(us, step) {
    if (step >= 60e6) {
      return fmtDur(us);
    }
    var unit = step < 1e3 ? 1 : step < 1e6 ? 1e3 : 1e6;
    var decimals = Math.max(0, -Math.floor(Math.log10(step / unit) + 1e-9));
    return (us / unit).toFixed(decimals) + (unit === 1 ? " µs" : unit === 1e3 ? " ms" : " s");
  }

  // Layout, in CSS pixels.
  var AXIS = 22, laneH = Math.min(22, Math.max(3, 440 / nl));
  if (nl * laneH > 6000) {
    laneH = 6000 / nl;
  }
  var dpr = 1, cssW = 0, cssH = 0, labelW = 0, plotW = 0, labels = [];
  function layout() {
    dpr = window.devicePixelRatio || 1;
    cssW = Math.max(360, box.clientWidth);
    ctx.font = FONT;
    labelW = 8;
    labels = [];
    if (laneH >= 10) {
      lanes.forEach(function (l) {
        labelW = Math.max(labelW, ctx.measureText(l).width + 14);
      });
      labelW = Math.min(labelW, 220);
      labels = lanes.map(function (l) {
        var t = l;
        while (t.length > 1 && ctx.measureText(t).width > labelW - 12) {
          t = t.slice(0, -2) + "…";
        }
        return t;
      });
    }
    plotW = cssW - labelW - 10;
    cssH = Math.ceil(nl * laneH) + AXIS;
    canvas.width = Math.round(cssW * dpr);
    canvas.height = Math.round(cssH * dpr);
    canvas.style.width = cssW + "px";
    canvas.style.height = cssH + "px";
  }

  var v0 = 0, v1 = span, MINW = Math.min(span, Math.max(10, span / 1e6));
  function draw() {
    var began = performance.now();
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, cssW, cssH);
    ctx.font = FONT;
    var scale = plotW / (v1 - v0), x0 = labelW, x1 = labelW + plotW, H = nl * laneH;
    var k, l;

    ctx.fillStyle = "#f4f6f8";
    for (l = 1; l < nl; l += 2) {
      ctx.fillRect(0, l * laneH, cssW, laneH);
    }
    var step = tickStep(v1 - v0, plotW);
    ctx.strokeStyle = "#e4e7ec";
    ctx.fillStyle = "#475467";
    ctx.textBaseline = "top";
    ctx.textAlign = "center";
    ctx.beginPath();
    for (var t = Math.ceil(v0 / step) * step; t <= v1; t += step) {
      var tx = Math.round(x0 + (t - v0) * scale) + 0.5;
      ctx.moveTo(tx, 0);
      ctx.lineTo(tx, H + 4);
      var label = tickLabel(t, step), half = ctx.measureText(label).width / 2;
      ctx.fillText(label, Math.min(Math.max(tx, half + 2), cssW - half - 2), H + 6);
    }
    ctx.stroke();

    // One path per status: a few fills, not one per bar.
    var pad = laneH >= 8 ? 2 : laneH >= 4 ? 1 : 0, bh = laneH - 2 * pad;
    var paths = statuses.map(function () { return new Path2D(); });
    var drawnBy = new Int32Array(statuses.length), drawn = 0;
    var list = n <= TWIN_MAX ? [] : null;
    for (i = 0; i < n; i++) {
      var x = x0 + (start[i] - v0) * scale, w = Math.max(dur[i] * scale, 1);
      if (x + w < x0 || x > x1) {
        continue;
      }
      var left = Math.max(x, x0), right = Math.min(x + w, x1), y = lane[i] * laneH + pad;
      if (right - left < 1) { // at an edge: still a pixel wide
        left = Math.min(left, x1 - 1);
        right = left + 1;
      } else if (right - left >= 4) { // a gap between bars that follow each other
        right -= 1;
      }
      paths[status[i]].rect(left, y, right - left, bh);
      drawnBy[status[i]]++;
      drawn++;
      if (list) {
        list.push(i, left, y, right - left, bh);
      }
    }
    order.forEach(function (st) {
      ctx.fillStyle = colors[st];
      ctx.fill(paths[st]);
    });
    // A retry (attempt 2 or later) starts with a dark notch, so it reads as one apart from
    // the attempt before it whatever their colours.
    if (retried) {
      var notches = new Path2D();
      for (i = 0; i < n; i++) {
        if (b.attempt[i] < 2) {
          continue;
        }
        var nx = x0 + (start[i] - v0) * scale;
        if (nx >= x0 && nx < x1 && dur[i] * scale >= 6) {
          notches.rect(nx, lane[i] * laneH + pad, 2, bh);
        }
      }
      ctx.fillStyle = "rgba(16, 24, 40, 0.7)";
      ctx.fill(notches);
    }

    if (labels.length) {
      ctx.fillStyle = "#344054";
      ctx.textAlign = "left";
      ctx.textBaseline = "middle";
      for (l = 0; l < nl; l++) {
        ctx.fillText(labels[l], 6, l * laneH + laneH / 2);
      }
    }

    canvas.dataset.drawn = drawn;
    canvas.dataset.lanes = nl;
    for (k = 0; k < statuses.length; k++) {
      canvas.setAttribute("data-drawn-" + statuses[k].toLowerCase().replace(/[^a-z0-9]/g, "-"), drawnBy[k]);
    }
    if (list) {
      twinList(list);
    } else if (!twins.firstChild) {
      var li = document.createElement("li");
      li.textContent = n + " attempts: too many to list here; hover the timeline, or query them with mapflow sql.";
      twins.appendChild(li);
    }
    canvas.dataset.drawMs = (performance.now() - began).toFixed(1);
  }

  function describe(k) {
    var e = errText(k);
    return taskName(row[k]) + ", attempt " + b.attempt[k] + ": " + statuses[status[k]] + ", " +
      fmtDur(dur[k]) + ", " + lanes[lane[k]] + (e ? ", " + e : "");
  }

  // twinList puts one item per drawn bar in #timeline-bars, with the bar's rectangle in CSS
  // pixels from the canvas's top left corner.
  function twinList(list) {
    var frag = document.createDocumentFragment();
    for (var k = 0; k < list.length; k += 5) {
      var j = list[k], li = document.createElement("li");
      li.textContent = describe(j);
      li.dataset.task = taskName(row[j]);
      li.dataset.status = statuses[status[j]];
      li.dataset.attempt = b.attempt[j];
      li.dataset.lane = lanes[lane[j]];
      li.dataset.x = list[k + 1].toFixed(1);
      li.dataset.y = list[k + 2].toFixed(1);
      li.dataset.w = list[k + 3].toFixed(1);
      li.dataset.h = list[k + 4].toFixed(1);
      frag.appendChild(li);
    }
    twins.replaceChildren(frag);
  }

  // hit finds the bar under (px, py), within 3 pixels, or -1. A lane's bars never overlap, so
  // their ends grow with their starts, and a binary search finds the candidates.
  function hit(px, py) {
    var l = Math.floor(py / laneH);
    if (px < labelW || px > labelW + plotW || l < 0 || l >= nl) {
      return -1;
    }
    var scale = plotW / (v1 - v0), t = v0 + (px - labelW) / scale, tol = 3 / scale;
    var lo = laneAt[l], hi = laneAt[l + 1];
    while (lo < hi) {
      var m = (lo + hi) >> 1;
      if (start[byLane[m]] <= t + tol) {
        lo = m + 1;
      } else {
        hi = m;
      }
    }
    var best = -1, bestD = Infinity;
    for (var k = lo - 1, steps = 0; k >= laneAt[l] && steps < 64; k--, steps++) {
      var j = byLane[k], e = start[j] + Math.max(dur[j], 1 / scale);
      var d = t < start[j] ? start[j] - t : t > e ? t - e : 0;
      if (d < bestD) {
        bestD = d;
        best = j;
      }
      if (e < t - tol) {
        break;
      }
    }
    return bestD <= tol ? best : -1;
  }

  function line(parent, text, cls) {
    var div = document.createElement("div");
    if (cls) {
      div.className = cls;
    }
    div.textContent = text;
    parent.appendChild(div);
    return div;
  }
  function showTip(k, clientX, clientY) {
    tip.replaceChildren();
    line(tip, taskName(row[k]), "t");
    line(tip, "attempt " + b.attempt[k] + " · " + statuses[status[k]] + " · run time " + fmtDur(dur[k]));
    line(tip, "on " + lanes[lane[k]] + " · started +" + fmtDur(start[k]) + " (" + clock(start[k]) + ")");
    var p = taskParams(row[k]);
    if (p) {
      var div = line(tip, "params ");
      var code = document.createElement("code");
      code.textContent = p;
      div.appendChild(code);
    }
    var e = errText(k);
    if (e) {
      line(tip, e, "e");
    }
    tip.hidden = false;
    var wr = wrap.getBoundingClientRect();
    var x = clientX - wr.left + 14, y = clientY - wr.top + 14;
    if (x + tip.offsetWidth > wr.width) {
      x = Math.max(0, clientX - wr.left - tip.offsetWidth - 14);
    }
    tip.style.left = x + "px";
    tip.style.top = y + "px";
  }

  var pending = false;
  function redraw() {
    if (!pending) {
      pending = true;
      requestAnimationFrame(function () {
        pending = false;
        draw();
      });
    }
  }
  function setView(a, c) {
    var w = Math.min(span, Math.max(MINW, c - a));
    a = Math.min(Math.max(a, 0), span - w);
    v0 = a;
    v1 = a + w;
    redraw();
  }
  function at(e) {
    var rc = canvas.getBoundingClientRect();
    return {x: e.clientX - rc.left, y: e.clientY - rc.top};
  }
  function timeAt(px) {
    return v0 + (Math.min(Math.max(px, labelW), labelW + plotW) - labelW) * (v1 - v0) / plotW;
  }

  // Drag across the timeline to zoom to that range; double-click to see it all.
  var drag = null;
  canvas.addEventListener("mousedown", function (e) {
    if (e.button !== 0) {
      return;
    }
    drag = {x: at(e).x, cx: e.clientX};
    e.preventDefault();
  });
  window.addEventListener("mouseup", function (e) {
    if (!drag) {
      return;
    }
    var a = drag.x, c = at(e).x;
    drag = null;
    sel.hidden = true;
    if (Math.abs(c - a) >= 4) {
      setView(timeAt(Math.min(a, c)), timeAt(Math.max(a, c)));
    }
  });
  canvas.addEventListener("mousemove", function (e) {
    if (drag) {
      tip.hidden = true;
      var wr = wrap.getBoundingClientRect(), rc = canvas.getBoundingClientRect();
      sel.hidden = false;
      sel.style.left = (Math.min(drag.cx, e.clientX) - wr.left) + "px";
      sel.style.width = Math.abs(e.clientX - drag.cx) + "px";
      sel.style.top = (rc.top - wr.top) + "px";
      sel.style.height = Math.min(rc.height, box.clientHeight) + "px";
      return;
    }
    var p = at(e), k = hit(p.x, p.y);
    if (k < 0) {
      tip.hidden = true;
      return;
    }
    showTip(k, e.clientX, e.clientY);
  });
  canvas.addEventListener("mouseleave", function () {
    tip.hidden = true;
  });
  canvas.addEventListener("dblclick", function () {
    setView(0, span);
  });
  // Ctrl+wheel (and a touchpad's pinch) zooms around the pointer; a sideways wheel pans. A
  // plain wheel scrolls the page as usual.
  canvas.addEventListener("wheel", function (e) {
    var p = at(e);
    if (e.ctrlKey) {
      e.preventDefault();
      var t = timeAt(p.x), f = Math.exp(e.deltaY * 0.002), w = (v1 - v0) * f;
      var a = t - (t - v0) * w / (v1 - v0);
      setView(a, a + w);
    } else if (e.shiftKey || Math.abs(e.deltaX) > Math.abs(e.deltaY)) {
      e.preventDefault();
      var d = (e.shiftKey ? e.deltaY : e.deltaX) * (v1 - v0) / plotW;
      setView(v0 + d, v1 + d);
    }
  }, {passive: false});
  window.addEventListener("resize", function () {
    layout();
    redraw();
  });

  layout();
  draw();
  canvas.dataset.readyMs = (performance.now() - t0).toFixed(1);
})();
