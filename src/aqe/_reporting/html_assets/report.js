"use strict";
(function () {
  var D = JSON.parse(document.getElementById("aqe-data").textContent);
  var A = D.attempts, N = A.t.length, O = D.outcomes, T = D.tiers;
  var FAILING = { failed: 1, error: 1, crashed: 1, timeout: 1 };
  var PAGE = 200;

  function el(tag, attrs, kids) {
    var node = document.createElement(tag);
    if (attrs) for (var k in attrs) {
      if (k === "text") node.textContent = attrs[k];
      else if (k === "cls") node.className = attrs[k];
      else node.setAttribute(k, attrs[k]);
    }
    if (kids) kids.forEach(function (kid) { if (kid) node.appendChild(kid); });
    return node;
  }
  function secs(ms) { return (ms / 1000).toFixed(ms < 10000 ? 3 : 1); }
  function nodeid(t) {
    var row = D.tests[t], file = D.files[row[0]];
    return row[1] === file ? file : file + "::" + row[1];
  }
  function chip(outcome, n) { return el("span", { cls: "chip o-" + outcome, text: (n === undefined ? "" : n + " ") + outcome }); }

  // Each test's last attempt: its outcome.
  var last = new Int32Array(D.tests.length).fill(-1);
  for (var i = 0; i < N; i++) {
    var t = A.t[i];
    if (last[t] < 0 || A.a[i] >= A.a[last[t]]) last[t] = i;
  }
  function attemptsFor(t) {
    var found = [];
    for (var j = 0; j < N; j++) if (A.t[j] === t) found.push(j);
    return found;
  }

  // -- summary ---------------------------------------------------------------------
  function summary() {
    var run = D.run, counts = {}, h = document.getElementById("summary");
    O.forEach(function (o) { counts[o] = 0; });
    for (var t = 0; t < last.length; t++) counts[O[A.o[last[t]]]]++;
    var took = run.end ? (run.end - run.start).toFixed(2) + " s" : "unfinished";
    var exit = run.exit_code === null ? "?" : run.exit_code;
    h.appendChild(el("h1", { text: "aqe run " + run.id }, [
      el("span", { cls: exit === 0 ? "ok" : "bad", text: "  exit " + exit })]));
    var chips = el("div", { id: "counts" });
    O.forEach(function (o) { if (counts[o]) chips.appendChild(chip(o, counts[o])); });
    if (!last.length) chips.appendChild(el("span", { text: "no tests ran" }));
    h.appendChild(chips);
    var when = new Date(run.start * 1000).toISOString().replace("T", " ").slice(0, 19) + " UTC";
    var bits = [last.length + " tests", N + " attempts", run.workers + " workers", took, when];
    if (run.commit) bits.push("commit " + run.commit.slice(0, 10) + (run.dirty ? "*" : ""));
    if (run.from_history) bits.push("from the history (captured output is not kept there)");
    h.appendChild(el("div", { cls: "meta", text: bits.join(" · ") }));
    h.appendChild(el("div", { cls: "meta", text: run.command.join(" ") }));
  }

  // -- failures (and flaky), each opened on demand ---------------------------------
  function attemptBlock(i) {
    var d = D.details[i] || [];
    var head = "attempt " + A.a[i] + " · " + O[A.o[i]] + " · worker " + A.w[i] + " · " + T[A.r[i]] +
      " tier · " + secs(A.d[i]) + " s" + (d[0] ? " · in " + d[0] : "") + (A.q[i] ? " · quarantined" : "");
    var box = el("div", { cls: "attempt" }, [el("h4", { text: head })]);
    var labels = ["message", "traceback", "captured stdout", "captured stderr", "captured log"];
    for (var k = 2; k < d.length; k++) {
      if (!d[k] || (k === 2 && d[3])) continue;
      box.appendChild(el("div", { cls: "hint", text: labels[k - 2] }));
      box.appendChild(el("pre", { text: d[k] }));
    }
    return box;
  }
  function failureEntry(t) {
    var i = last[t], d = D.details[i] || [];
    var box = el("details", { cls: "failure" });
    var sum = el("summary", null, [chip(O[A.o[i]]), document.createTextNode(" " + nodeid(t) + " ")]);
    var msg = d[2] ? String(d[2]).split("\n")[0] : "";
    if (msg) sum.appendChild(el("span", { cls: "msg", text: msg.slice(0, 300) }));
    box.appendChild(sum);
    box.addEventListener("toggle", function () {
      if (!box.open || box.dataset.filled) return;
      box.dataset.filled = "1";
      attemptsFor(t).forEach(function (j) { box.appendChild(attemptBlock(j)); });
    });
    return box;
  }
  function failures() {
    var list = document.getElementById("failures"), shown = 0, rest = [];
    D.collection_errors.forEach(function (e) {
      var box = el("details", { cls: "failure" }, [
        el("summary", null, [chip("error"), document.createTextNode(" collecting " + e[0])]),
        el("pre", { text: e[1] })]);
      list.appendChild(box);
      shown++;
    });
    var order = ["failed", "error", "crashed", "timeout", "flaky"];
    var picked = [];
    for (var t = 0; t < last.length; t++) {
      var o = O[A.o[last[t]]];
      if (FAILING[o] || o === "flaky") picked.push(t);
    }
    picked.sort(function (a, b) { return order.indexOf(O[A.o[last[a]]]) - order.indexOf(O[A.o[last[b]]]) || a - b; });
    if (!picked.length && !shown) list.appendChild(el("p", { cls: "empty", text: "No failures." }));
    var first = picked.slice(0, 100);
    first.forEach(function (t) { list.appendChild(failureEntry(t)); });
    if (picked.length > first.length) {
      var more = el("button", { type: "button", text: "show all " + picked.length });
      more.addEventListener("click", function () {
        more.remove();
        picked.slice(100).forEach(function (t) { list.appendChild(failureEntry(t)); });
      });
      list.appendChild(more);
    }
  }

  // -- the worker timeline: one lane per worker, idle time is the pale background ---
  var COLOURS = {};
  function colour(name) {
    if (!COLOURS[name]) COLOURS[name] = getComputedStyle(document.documentElement).getPropertyValue("--" + name).trim() || "#888";
    return COLOURS[name];
  }
  function timeline() {
    var canvas = document.getElementById("timeline"), hint = document.getElementById("timeline-hint");
    var lanes = {}, first = {}, end = 0, timed = 0;
    for (var i = 0; i < N; i++) {
      if (A.s[i] < 0 || A.w[i] < 0) continue;
      lanes[A.w[i]] = 1; timed++;
      first[A.w[i]] = Math.min(A.w[i] in first ? first[A.w[i]] : Infinity, A.s[i]);
      end = Math.max(end, A.s[i] + A.d[i]);
    }
    var workers = Object.keys(lanes).map(Number).sort(function (a, b) { return a - b; });
    if (!timed) { hint.textContent = "No start times recorded for this run."; canvas.remove(); return; }
    var laneH = 18, gap = 4, left = 44, width = canvas.clientWidth || 1000;
    var height = workers.length * (laneH + gap) + 18, ratio = window.devicePixelRatio || 1;
    canvas.width = width * ratio; canvas.height = height * ratio; canvas.style.height = height + "px";
    var g = canvas.getContext("2d"); g.scale(ratio, ratio);
    var span = Math.max(end, 1), scale = (width - left - 6) / span, busy = {};
    g.font = "11px sans-serif"; g.textBaseline = "middle";
    workers.forEach(function (w, k) {
      var y = k * (laneH + gap);
      g.fillStyle = colour("idle"); g.fillRect(left, y, width - left - 6, laneH);
      g.fillStyle = "#57606a"; g.fillText("w" + w, 4, y + laneH / 2);
      busy[w] = 0;
    });
    var laneOf = {}; workers.forEach(function (w, k) { laneOf[w] = k; });
    for (var j = 0; j < N; j++) {
      if (A.s[j] < 0 || A.w[j] < 0) continue;
      var y2 = laneOf[A.w[j]] * (laneH + gap), x = left + A.s[j] * scale;
      g.fillStyle = colour(O[A.o[j]]);
      g.fillRect(x, y2 + (A.r[j] ? 0 : 2), Math.max(A.d[j] * scale, 0.6), laneH - (A.r[j] ? 0 : 4));
      if (A.r[j]) { g.strokeStyle = "#000"; g.strokeRect(x, y2, Math.max(A.d[j] * scale, 1), laneH); }
      busy[A.w[j]] += A.d[j];
    }
    g.fillStyle = "#57606a";
    var axisY = workers.length * (laneH + gap) + 8;
    for (var q = 0; q <= 4; q++) {
      var label = secs(span * q / 4) + " s";
      g.textAlign = q === 0 ? "left" : q === 4 ? "right" : "center";
      g.fillText(label, left + (width - left - 6) * q / 4, axisY);
    }
    var idle = workers.map(function (w) {
      return "w" + w + " " + secs(Math.max(span - first[w] - busy[w], 0)) + " s";
    });
    hint.textContent = "From the run's start (collection first). Each bar is an attempt, coloured by outcome; " +
      "outlined: run alone on the warm or cold tier; pale: idle. Idle after a worker's first test: " + idle.join(", ");
    var legend = document.getElementById("timeline-legend");
    O.forEach(function (o) {
      legend.appendChild(el("span", null, [el("i", { style: "background:" + colour(o) }), document.createTextNode(o)]));
    });
  }

  // -- slowest, duration distribution, recent runs ---------------------------------
  function slowest() {
    var top = [];
    for (var i = 0; i < N; i++) {
      if (top.length < 15 || A.d[i] > A.d[top[top.length - 1]]) {
        top.push(i); top.sort(function (a, b) { return A.d[b] - A.d[a]; });
        if (top.length > 15) top.pop();
      }
    }
    var table = document.getElementById("slowest");
    top.forEach(function (i) {
      table.appendChild(el("tr", null, [el("td", { cls: "num", text: secs(A.d[i]) + " s" }),
        el("td", { cls: "id", text: nodeid(A.t[i]) + (A.a[i] > 1 ? " (attempt " + A.a[i] + ")" : "") })]));
    });
  }
  function bars(target, values, classes, labels, titles) {
    var box = document.getElementById(target), max = Math.max.apply(null, values.concat([1]));
    values.forEach(function (v, k) {
      var bar = el("div", { title: titles[k] });
      bar.style.height = (100 * v / max) + "%";
      if (classes[k]) bar.className = classes[k];
      box.appendChild(bar);
    });
    box.parentNode.insertBefore(el("div", { cls: "axis" }, labels.map(function (l) { return el("span", { text: l }); })), box.nextSibling);
  }
  function histogram() {
    var edges = [1, 10, 100, 1000, 10000, 60000, Infinity];
    var names = ["<1ms", "<10ms", "<0.1s", "<1s", "<10s", "<60s", "60s+"], counts = edges.map(function () { return 0; });
    for (var t = 0; t < last.length; t++) {
      var d = A.d[last[t]], k = 0;
      while (d >= edges[k]) k++;
      counts[k]++;
    }
    bars("histogram", counts, [], [names[0], names[names.length - 1]],
      counts.map(function (c, k) { return names[k] + ": " + c + " tests"; }));
  }
  function trend() {
    var box = document.getElementById("trend");
    if (D.trend.length < 2) box.parentNode.appendChild(el("p", { cls: "hint", text: "The history holds no earlier run." }));
    var max = 1;
    D.trend.forEach(function (p) { max = Math.max(max, p[3] + p[4]); });
    D.trend.forEach(function (p) {
      var col = el("div", { cls: "stack", title: p[0] + ": " + p[2] + " tests, " + p[3] + " failing, " + p[4] + " flaky" });
      col.appendChild(el("div", { cls: "f" })).style.height = (100 * p[3] / max) + "%";
      col.appendChild(el("div", { cls: "k" })).style.height = (100 * p[4] / max) + "%";
      box.appendChild(col);
    });
  }

  // -- shards (aqe merge, aqe run --shard): predicted and actual seconds each --------
  function shards() {
    var S = D.shards || [];
    if (!S.length) return;
    document.getElementById("shards-section").hidden = false;
    var body = document.querySelector("#shards tbody"), max = 0, sum = 0, worst = 0;
    S.forEach(function (s) { max = Math.max(max, s[3], s[4] || 0); sum += s[4] || 0; worst = Math.max(worst, s[4] || 0); });
    S.forEach(function (s) {
      var bar = el("div", { cls: "pair" }, [el("i", { cls: "p" }), el("i", { cls: "a" })]);
      bar.firstChild.style.width = (100 * s[3] / (max || 1)) + "%";
      bar.lastChild.style.width = (100 * (s[4] || 0) / (max || 1)) + "%";
      body.appendChild(el("tr", null, [el("td", { text: s[0] + "/" + s[1] }), el("td", { cls: "num", text: String(s[2]) }),
        el("td", { cls: "num", text: s[3].toFixed(2) }), el("td", { cls: "num", text: s[4] === null ? "?" : s[4].toFixed(2) }),
        el("td", { cls: "num", text: s[5] === null ? "?" : s[5].toFixed(2) }), el("td", null, [bar])]));
    });
    var mean = sum / S.length;
    document.getElementById("shards-hint").textContent = S.length > 1 && mean > 0 ?
      "Balance: the slowest shard's tests took " + (worst / mean).toFixed(2) + "x the mean shard's (grey: predicted, blue: actual; seconds of test time, every attempt)." :
      "Grey: predicted, blue: actual (seconds of test time, every attempt).";
  }

  // -- the test table: filtered in memory, drawn a page at a time ------------------
  var rows = [], drawn = 0;
  function filters() {
    var outcome = document.getElementById("f-outcome"), file = document.getElementById("f-file");
    var worker = document.getElementById("f-worker"), tier = document.getElementById("f-tier");
    O.forEach(function (o, k) { outcome.appendChild(el("option", { value: String(k), text: o })); });
    var byName = D.files.map(function (f, k) { return [f, k]; }).sort();
    byName.forEach(function (p) { file.appendChild(el("option", { value: String(p[1]), text: p[0] })); });
    var seen = {};
    for (var i = 0; i < N; i++) seen[A.w[i]] = 1;
    Object.keys(seen).map(Number).sort(function (a, b) { return a - b; }).forEach(function (w) {
      worker.appendChild(el("option", { value: String(w), text: w < 0 ? "none (aqe's verdict)" : "w" + w }));
    });
    T.forEach(function (r, k) { tier.appendChild(el("option", { value: String(k), text: r })); });
    var shard = document.getElementById("f-shard");
    (D.shards || []).forEach(function (s) { shard.appendChild(el("option", { value: String(s[0]), text: "shard " + s[0] + "/" + s[1] })); });
    shard.hidden = !(D.shards || []).length;
    var marker = document.getElementById("f-marker"), names = D.markers || [];
    names.map(function (m, k) { return [m, k]; }).sort().forEach(function (p) {
      marker.appendChild(el("option", { value: String(p[1]), text: "@" + p[0] }));
    });
    marker.hidden = !names.length;
    var timer = null;
    document.getElementById("filters").addEventListener("input", function () {
      clearTimeout(timer); timer = setTimeout(apply, 120);
    });
    document.getElementById("filters").addEventListener("submit", function (e) { e.preventDefault(); });
    document.getElementById("more").addEventListener("click", function () { draw(PAGE); });
  }
  function apply() {
    var q = document.getElementById("f-search").value.trim().toLowerCase();
    var o = document.getElementById("f-outcome").value, f = document.getElementById("f-file").value;
    var w = document.getElementById("f-worker").value, r = document.getElementById("f-tier").value;
    var every = document.getElementById("f-attempts").checked, s = document.getElementById("f-shard").value;
    var m = document.getElementById("f-marker").value, TM = D.test_markers || {};
    rows = [];
    for (var i = 0; i < N; i++) {
      var t = A.t[i];
      if (!every && last[t] !== i) continue;
      if (o !== "" && A.o[i] !== +o) continue;
      if (f !== "" && D.tests[t][0] !== +f) continue;
      if (w !== "" && A.w[i] !== +w) continue;
      if (r !== "" && A.r[i] !== +r) continue;
      if (s !== "" && D.tests[t][3] !== +s) continue;
      if (m !== "" && (TM[t] || []).indexOf(+m) < 0) continue;
      if (q && nodeid(t).toLowerCase().indexOf(q) < 0) {
        var d = D.details[i];
        if (!d || String(d[2]).toLowerCase().indexOf(q) < 0) continue;
      }
      rows.push(i);
    }
    document.querySelector("#tests tbody").textContent = "";
    drawn = 0;
    draw(PAGE);
  }
  function draw(count) {
    var body = document.querySelector("#tests tbody"), stop = Math.min(rows.length, drawn + count);
    var frag = document.createDocumentFragment();
    for (; drawn < stop; drawn++) frag.appendChild(testRow(rows[drawn]));
    body.appendChild(frag);
    document.getElementById("f-count").textContent = rows.length + (rows.length === 1 ? " match" : " matches") +
      (rows.length > drawn ? ", " + drawn + " shown" : "");
    document.getElementById("more").hidden = drawn >= rows.length;
  }
  function testRow(i) {
    var tr = el("tr", null, [el("td", null, [chip(O[A.o[i]])]), el("td", { cls: "id", text: nodeid(A.t[i]) }),
      el("td", { text: A.w[i] < 0 ? "-" : "w" + A.w[i] }), el("td", { text: String(A.a[i]) }),
      el("td", { text: T[A.r[i]] }), el("td", { cls: "num", text: secs(A.d[i]) })]);
    tr.addEventListener("click", function () {
      var next = tr.nextSibling;
      if (next && next.classList.contains("open-detail")) { next.remove(); return; }
      var cell = el("td", { colspan: "6" });
      var shown = D.details[i] ? [i] : attemptsFor(A.t[i]).filter(function (j) { return D.details[j]; });
      if (!shown.length) cell.appendChild(el("p", { cls: "empty", text: "Nothing recorded beyond the outcome." }));
      shown.forEach(function (j) { cell.appendChild(attemptBlock(j)); });
      tr.parentNode.insertBefore(el("tr", { cls: "open-detail" }, [cell]), tr.nextSibling);
    });
    return tr;
  }

  summary();
  failures();
  timeline();
  shards();
  filters();
  apply();
  requestAnimationFrame(function () {
    window.aqeFirstScreen = performance.now();
    document.body.dataset.ready = "1";
    setTimeout(function () { slowest(); histogram(); trend(); document.body.dataset.charts = "1"; }, 0);
  });
})();
