// The station page: follows the events (GET /events, server-sent), sends commands (POST).
// Everything that comes from a run is put on the page with textContent, never as HTML.
"use strict";

(function () {
  const slots = [];         // per slot: its state, as the events say
  const cards = [];         // per slot: its card's elements
  const seen = { seq: 0, gaps: 0, events: 0, snapshots: 0 };
  window.tofuStation = { seen, slots };

  const $ = (id) => document.getElementById(id);
  const el = (tag, cls, text) => {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  };

  function emptySlot(index, name) {
    return { index, name: name || "slot " + (index + 1), state: "IDLE", serial: null,
      phase: null, phaseIndex: null, phaseCount: 0, started: null, ended: null, last: null,
      prompts: [], waiting: null, outcome: null, failures: [], log: null, sweep: null };
  }

  function slot(i) {
    const index = i === null || i === undefined ? 0 : i;
    while (slots.length <= index) slots.push(emptySlot(slots.length));
    return slots[index];
  }

  // -- the state, from a snapshot and the events (the same rules as the server's snapshot) --

  function fromSnapshot(snap) {
    slots.length = 0;
    for (const s of snap.slots || []) {
      const m = s.last_measurement;
      slots.push(Object.assign(emptySlot(s.index, s.name), {
        state: s.state, serial: s.serial_number, phase: s.phase, phaseIndex: s.phase_index,
        phaseCount: s.phase_count, started: s.started_millis,
        last: m ? { phase: m.phase, name: m.name, value: m.value, outcome: m.outcome } : null,
        prompts: (s.prompts || []).map((p) => ({ id: p.id, message: p.message, kind: p.kind, image: p.image })),
        waiting: s.waiting_for, outcome: s.outcome, failures: s.failures || [],
      }));
    }
    seen.seq = snap.seq;
    seen.snapshots += 1;
    // The same slots: their cards are redrawn, not built again (a field being typed into
    // keeps its text and focus; a busy station's page gets snapshots often).
    if (cards.length === slots.length) slots.forEach((s) => scheduleRender(s.index)); else build();
  }

  function apply(e) {
    const s = slot(e.slot);
    switch (e.type) {
      case "run_started":
        Object.assign(s, emptySlot(s.index, s.name), { state: "RUNNING", serial: e.serial_number,
          phaseCount: e.phase_count, started: e.time_millis });
        break;
      case "unit_identified": s.serial = e.serial_number; break;
      case "phase_started": s.phase = e.name; s.phaseIndex = e.index; s.waiting = null; break;
      case "measurement_set":
        s.waiting = null; // set from inside the phase: it holds its plugs
        s.last = { phase: e.phase, name: e.name, value: e.value, outcome: e.outcome, units: e.units, points: e.points };
        break;
      case "sweep_points": addPoints(s, e); break;
      case "phase_ended": {
        s.waiting = null;
        const r = e.record || e; // the phase's summary
        if (r.outcome === "FAIL" || r.outcome === "ERROR") {
          const failed = (r.measurements || []).filter((m) => m.outcome === "FAIL").map((m) => r.name + "." + m.name);
          if (failed.length) s.failures.push(...failed); else s.failures.push(r.name);
        }
        break;
      }
      case "log": if (e.level >= 20) s.log = e.message; break;
      case "prompt_opened": {
        s.prompts.push({ id: e.id, message: e.message, kind: e.kind, image: e.image });
        const nextUnit = e.kind.kind === "serial_number" && s.state !== "RUNNING" && s.state !== "PROMPT";
        if (!nextUnit) s.state = "PROMPT";
        break;
      }
      case "prompt_answered":
      case "prompt_closed":
        s.prompts = s.prompts.filter((p) => p.id !== e.id);
        if (s.prompts.length === 0 && s.state === "PROMPT") s.state = "RUNNING";
        break;
      case "waiting_for_plug": s.waiting = e.plug; break;
      case "run_ended": {
        const r = e.record || e; // the run's summary
        s.state = { PASS: "PASS", FAIL: "FAIL", ABORTED: "ABORTED" }[r.outcome] || "ERROR";
        s.outcome = r.outcome; s.prompts = []; s.waiting = null; s.ended = e.time_millis;
        break;
      }
      case "run_closed": refreshLists(); break;
      case "output_done": refreshLists(); break;
      default: break;
    }
    scheduleRender(s.index);
  }

  // Cards are drawn at most once per animation frame, however fast the events come (a fast
  // test sends thousands a second); the state above is always up to date. A hidden page gets
  // no frames: it draws every 250 ms instead.
  const dirty = new Set();
  function scheduleRender(i) {
    if (dirty.size === 0) {
      if (document.hidden) setTimeout(renderDirty, 250); else requestAnimationFrame(renderDirty);
    }
    dirty.add(i);
  }
  function renderDirty() {
    const slotsToDraw = [...dirty];
    dirty.clear();
    for (const i of slotsToDraw) if (slots[i]) render(i);
  }

  // -- the cards --

  function build() {
    const main = $("slots");
    main.replaceChildren();
    cards.length = 0;
    slots.forEach((s) => {
      const c = {
        root: el("section", "card"), name: el("span", "name"), state: el("span", "state"),
        serial: el("div", "serial"), phase: el("div", "phase"), elapsed: el("span", "elapsed"),
        measurement: el("div", "measurement"), waiting: el("div", "waiting"), log: el("div", "log"),
        banner: el("div", "banner"), ask: el("div", "ask-slot"), chart: el("div", "chart"),
        stop: el("button", "stop", "STOP"), askId: null, plot: null, plotKey: null,
      };
      c.root.dataset.slot = String(s.index);
      const top = el("div", "top");
      top.append(c.name, c.state);
      const phaseLine = el("div", "phase-line");
      phaseLine.append(c.phase, c.elapsed);
      c.stop.type = "button";
      c.stop.dataset.action = "stop-slot";
      c.stop.addEventListener("click", () => confirmStop(s.index));
      const actions = el("div", "actions");
      actions.append(c.stop);
      c.root.append(top, c.serial, phaseLine, c.measurement, c.waiting, c.log, c.banner, c.ask, c.chart, actions);
      main.append(c.root);
      cards.push(c);
    });
    slots.forEach((s) => render(s.index));
  }

  // Only what changed is written: the browser lays out and paints again only what was
  // written (a busy station redraws its cards many times a second).
  function setText(node, text) {
    if (node.textContent !== text) node.textContent = text;
  }

  function render(i) {
    const s = slots[i], c = cards[i];
    if (!c) { build(); return; }
    if (c.root.dataset.state !== s.state) c.root.dataset.state = s.state;
    setText(c.name, s.name);
    setText(c.state, s.state);
    setText(c.serial, s.serial || "—");
    setText(c.phase, s.phase && s.state !== "IDLE"
      ? "phase " + (s.phaseIndex + 1) + " of " + s.phaseCount + ": " + s.phase : "");
    setText(c.measurement, s.last ? describe(s.last) : "");
    setText(c.waiting, s.waiting && (s.state === "RUNNING" || s.state === "PROMPT") ? "waiting for " + s.waiting : "");
    setText(c.log, s.log || "");
    const done = ["PASS", "FAIL", "ERROR", "ABORTED"].includes(s.state);
    if (c.banner.hidden === done) c.banner.hidden = !done;
    const bannerKey = done ? s.state + "\n" + s.outcome + "\n" + s.failures.join("\n") : null;
    if (done && c.bannerKey !== bannerKey) {
      c.bannerKey = bannerKey;
      c.banner.dataset.outcome = s.state;
      const list = el("ul", "failures");
      for (const f of s.failures) list.append(el("li", null, f));
      c.banner.replaceChildren(el("div", "outcome", s.outcome && s.outcome !== s.state ? s.state + " (" + s.outcome + ")" : s.state), list);
    }
    if (!done) c.bannerKey = null;
    const stoppable = s.state === "RUNNING" || s.state === "PROMPT";
    if (c.stop.disabled === stoppable) c.stop.disabled = !stoppable;
    renderAsk(s, c);
    elapsed(s, c);
  }

  function describe(m) {
    let value = m.value === null || m.value === undefined ? (m.points ? m.points + " points" : "") : m.value;
    if (typeof value === "object") value = JSON.stringify(value);
    const units = m.units ? " " + m.units : "";
    const outcome = m.outcome ? " " + m.outcome : "";
    return m.name + " = " + value + units + outcome;
  }

  function elapsed(s, c) {
    if (!s.started || s.state === "IDLE") { c.elapsed.textContent = ""; return; }
    const running = ["RUNNING", "PROMPT"].includes(s.state);
    // A run that ended before the page opened: its end time is not in the snapshot.
    if (!running && !s.ended) { c.elapsed.textContent = ""; return; }
    const end = running ? Date.now() : s.ended;
    setText(c.elapsed, "  " + ((end - s.started) / 1000).toFixed(1) + " s");
  }

  // -- prompts: the answer field has the focus, Enter sends (a barcode scanner types and sends Enter) --

  function renderAsk(s, c) {
    const p = s.prompts[0];
    const id = p ? p.id : null;
    if (id === c.askId) return;
    c.askId = id;
    c.ask.replaceChildren();
    if (!p) { focusSoon(); return; }
    const box = el("form", "ask");
    box.dataset.prompt = String(p.id);
    box.dataset.kind = p.kind.kind;
    box.append(el("div", "question", p.message));
    if (typeof p.image === "string" && p.image.startsWith("data:image/")) {
      const img = el("img");
      img.src = p.image;
      img.alt = "";
      box.append(img);
    }
    const input = el("input", "answer");
    input.autocomplete = "off";
    input.name = "answer";
    const reason = el("div", "reason");
    const buttons = el("div", "buttons");
    const k = p.kind;
    const send = (value) => {
      const refused = check(k, value);
      if (refused) { reason.textContent = refused; input.select(); return; }
      if (k.kind === "serial_number") post("/api/slots/" + s.index + "/start", { serial: value }, reason);
      else post("/api/prompts/" + p.id, { value }, reason);
    };
    if (k.kind === "serial_number") input.placeholder = "scan the serial number";
    else if (k.kind === "number") { input.inputMode = "decimal"; input.placeholder = range(k); }
    else if (k.kind === "choice") {
      input.placeholder = "1 to " + k.options.length + ", or the option";
      k.options.forEach((o, n) => {
        const b = el("button", null, (n + 1) + ". " + o);
        b.type = "button";
        b.addEventListener("click", () => send(o));
        buttons.append(b);
      });
    } else if (k.kind === "pass_fail") {
      input.placeholder = "pass or fail";
      for (const v of ["pass", "fail"]) {
        const b = el("button", v === "fail" ? "stop" : null, v.toUpperCase());
        b.type = "button";
        b.dataset.answer = v;
        b.addEventListener("click", () => send(v));
        buttons.append(b);
      }
    } else if (k.kind === "confirm") {
      input.placeholder = "Enter to go on";
      const b = el("button", null, "OK");
      b.type = "button";
      b.addEventListener("click", () => send(input.value.trim()));
      buttons.append(b);
    }
    box.addEventListener("submit", (ev) => { ev.preventDefault(); send(input.value.trim()); });
    input.addEventListener("pointerdown", () => { input.dataset.chosen = "1"; });
    box.append(input, buttons, reason);
    c.ask.append(box);
    focusSoon();
  }

  // The answer field has the focus: a question asked in a phase first, else the first slot
  // waiting for a unit; never away from a field the operator chose or is typing into.
  let focusPending = false;
  function focusSoon() {
    if (focusPending) return;
    focusPending = true;
    queueMicrotask(() => {
      focusPending = false;
      const active = document.activeElement;
      if (active && active.tagName === "INPUT" && active.isConnected && (active.value !== "" || active.dataset.chosen)) return;
      const fields = [...document.querySelectorAll("#slots form.ask input.answer")];
      const best = fields.find((f) => f.closest("form").dataset.kind !== "serial_number") || fields[0];
      if (best && best !== active) best.focus();
    });
  }

  function range(k) {
    const lo = k.min === null || k.min === undefined ? "" : k.min;
    const hi = k.max === null || k.max === undefined ? "" : k.max;
    return lo === "" && hi === "" ? "a number" : "a number, " + lo + " to " + hi;
  }

  function check(k, value) {
    if (k.kind === "serial_number" && value === "") return "scan or type the serial number";
    if (k.kind === "number") {
      const n = Number(value);
      if (value === "" || !Number.isFinite(n)) return "'" + value + "' is not a number";
      if ((k.min !== null && k.min !== undefined && n < k.min) || (k.max !== null && k.max !== undefined && n > k.max)) {
        return "'" + value + "' is not " + range(k).replace("a number, ", "between ");
      }
    }
    if (k.kind === "choice") {
      const byNumber = Number(value) >= 1 && Number(value) <= k.options.length;
      if (!byNumber && !k.options.some((o) => o.toLowerCase() === value.toLowerCase())) return "'" + value + "' is not one of the options";
    }
    if (k.kind === "pass_fail" && !["pass", "fail", "p", "f", "y", "n", "yes", "no"].includes(value.toLowerCase())) return "pass or fail";
    return null;
  }

  // -- the sweep chart --

  function addPoints(s, e) {
    const key = e.phase + "." + e.name;
    if (!s.sweep || s.sweep.key !== key) s.sweep = { key, xs: [], ys: [], drawn: false };
    for (const row of e.points) {
      s.sweep.xs.push(row.length > 1 ? row[0] : s.sweep.xs.length);
      s.sweep.ys.push(row[row.length - 1]);
    }
    scheduleChart(s.index);
  }

  const chartQueue = new Set();
  function scheduleChart(i) {
    if (chartQueue.size === 0) requestAnimationFrame(drawCharts);
    chartQueue.add(i);
  }

  function drawCharts() {
    for (const i of chartQueue) {
      const s = slots[i], c = cards[i];
      if (!s || !c || !s.sweep || typeof uPlot === "undefined") continue;
      // Points arrive in x order within a batch; uPlot wants them sorted.
      const order = s.sweep.xs.map((x, n) => n).sort((a, b) => s.sweep.xs[a] - s.sweep.xs[b]);
      const data = [order.map((n) => s.sweep.xs[n]), order.map((n) => s.sweep.ys[n])];
      if (!c.plot || c.plotKey !== s.sweep.key) {
        if (c.plot) c.plot.destroy();
        c.chart.replaceChildren();
        const width = Math.max(200, c.root.clientWidth - 24);
        c.plot = new uPlot({ width, height: 140, title: s.sweep.key, scales: { x: { time: false } },
          series: [{}, { label: s.sweep.key, stroke: "#39f" }], axes: [{ stroke: "#aaa" }, { stroke: "#aaa" }] }, data, c.chart);
        c.plotKey = s.sweep.key;
      } else {
        c.plot.setData(data);
      }
      c.chart.dataset.points = String(data[0].length);
    }
    chartQueue.clear();
  }

  // -- commands --

  async function post(url, body, reason) {
    try {
      const r = await fetch(url, { method: "POST", headers: { "Content-Type": "application/json" }, body: body === undefined ? "{}" : JSON.stringify(body) });
      if (!r.ok) {
        const e = await r.json().catch(() => ({ error: r.statusText }));
        if (reason) reason.textContent = e.error || r.statusText;
        return false;
      }
      if (reason) reason.textContent = "";
      return true;
    } catch (err) {
      if (reason) reason.textContent = "not sent: " + err;
      return false;
    }
  }

  let onConfirm = null;
  function ask(text, action) {
    $("confirm-text").textContent = text;
    onConfirm = action;
    $("confirm").hidden = false;
    $("confirm-no").focus();
  }
  function confirmStop(i) {
    const s = slots[i];
    ask("Stop " + s.name + (s.serial ? " (" + s.serial + ")" : "") + "? Its run is aborted; its teardowns run.", () => post("/api/slots/" + i + "/abort"));
  }

  // -- recent runs and the upload queue --

  let listsTimer = null;
  function refreshLists() {
    clearTimeout(listsTimer);
    listsTimer = setTimeout(loadLists, 300);
  }

  async function loadLists() {
    try {
      const runs = await (await fetch("/api/runs")).json();
      const body = $("runs").tBodies[0];
      body.replaceChildren(...runs.runs.map((r) => {
        const tr = el("tr");
        tr.dataset.outcome = r.outcome || "";
        const link = el("td");
        if (r.report) { const a = el("a", null, "report"); a.href = r.report; a.target = "_blank"; a.rel = "noopener"; link.append(a); }
        tr.append(el("td", null, r.serial_number || ""), el("td", null, r.outcome || ""), el("td", null, r.slot || ""),
          el("td", null, r.start_time_millis ? new Date(r.start_time_millis).toLocaleTimeString() : ""), link);
        return tr;
      }));
      const queue = await (await fetch("/api/uploads")).json();
      $("uploads").tBodies[0].replaceChildren(...queue.entries.map((u) => {
        const tr = el("tr");
        tr.append(el("td", null, u.serial_number), el("td", null, u.status), el("td", null, u.attempts), el("td", null, u.last_error || ""));
        return tr;
      }));
    } catch (err) {
      // The next refresh tries again; the connection indicator says when the server is gone.
    }
  }

  // -- the event stream --

  // The events come in batches (`?coalesce=1`): one message per batch, one event's JSON per
  // line (JSON has no raw line break), `id:` the batch's last seq, so a reconnection resumes
  // after it. A batch leaves out the events a later one of the same batch replaces on the
  // cards (a slot's measurement set, phase started…): what is left brings the page to the
  // state every event would, at a busy station's pace too.
  function connect() {
    const source = new EventSource("/events?coalesce=1");
    source.addEventListener("snapshot", (m) => { fromSnapshot(JSON.parse(m.data)); });
    source.onmessage = (m) => {
      const last = Number(m.lastEventId);
      if (m.data !== "") {
        const events = JSON.parse("[" + m.data.replaceAll("\n", ",") + "]");
        // A batch's first event is always sent: it follows the last batch's id.
        if (events.length && events[0].seq > seen.seq + 1) seen.gaps += 1;
        for (const e of events) {
          if (e.seq <= seen.seq) continue; // sent again after a reconnection
          seen.seq = e.seq;
          seen.events += 1;
          apply(e);
        }
      }
      if (last > seen.seq) seen.seq = last;
    };
    source.onopen = () => { $("connection").textContent = "live"; $("connection").dataset.connected = "true"; };
    source.onerror = () => { $("connection").textContent = "reconnecting…"; $("connection").dataset.connected = "false"; };
  }

  document.addEventListener("DOMContentLoaded", () => {
    $("stop-all").addEventListener("click", () => ask("Stop every slot? Their runs are aborted; teardowns run.", () => post("/api/abort")));
    $("confirm-yes").addEventListener("click", () => { $("confirm").hidden = true; if (onConfirm) onConfirm(); onConfirm = null; });
    $("confirm-no").addEventListener("click", () => { $("confirm").hidden = true; onConfirm = null; });
    document.addEventListener("keydown", (ev) => { if (ev.key === "Escape") $("confirm").hidden = true; });
    setInterval(() => slots.forEach((s, i) => { if (cards[i]) elapsed(s, cards[i]); }), 200);
    setInterval(loadLists, 10000);
    loadLists();
    connect();
  });
})();
