// smicast live dashboard: one EventSource on /events, DOM updated in place.
//
// Every string from the wire (host name, GPU names, error messages) reaches the page
// through textContent or setAttribute only; the page's Content-Security-Policy forbids
// inline script and style, so styles are set through classes and the CSSOM.
"use strict";

(function () {
  const STREAM_URL = "events?include=gpu,cpu,memory,chassis";
  const WINDOW_MS = 5 * 60 * 1000; // charts show up to the last 5 minutes...
  const MIN_WINDOW_MS = 30 * 1000; // ...and grow to it from 30 s, so a new page shows a shape
  const RING_POINTS = 600; // per series: 5 minutes at a 0.5 s interval
  const BACKOFF_MIN_MS = 1000;
  const BACKOFF_MAX_MS = 30000;
  const STALE_MIN_MS = 15000; // no frame for this long (or 4 intervals) -> reconnect
  const MAX_NOTICES = 5;
  const GIB = 1024 * 1024 * 1024;
  const ENERGY_URL = "energy";
  const ENERGY_POLL_MS = 10000;
  const ENERGY_FIRST_POLL_MS = 2000;
  const GAP_INTERVALS = 2.5; // frames further apart than this many intervals: a gap
  const SKEW_WINDOW = 32; // frames whose (arrival - timestamp) give the server clock

  const COLORS = {
    utilization: "#4cc2ff",
    memory: "#b48cff",
    temperature: "#ff9f43",
    power: "#5ce08a",
  };

  // A bounded ring of (time, value) points; NaN values leave a gap in the line.
  class Ring {
    constructor(capacity) {
      this.t = new Float64Array(capacity);
      this.v = new Float64Array(capacity);
      this.start = 0;
      this.length = 0;
    }

    newest() {
      return this.length ? this.t[(this.start + this.length - 1) % this.t.length] : -Infinity;
    }

    // Points go in time order; a frame seen twice (a resend) is not plotted twice, and
    // a jump of more than `gapMs` since the previous point leaves a gap in the line.
    add(time, value, gapMs) {
      const last = this.newest();
      if (!(time > last)) return;
      if (Number.isFinite(last) && gapMs > 0 && time - last > gapMs) this.push(last + 1, NaN);
      this.push(time, value);
    }

    push(time, value) {
      const cap = this.t.length;
      const at = (this.start + this.length) % cap;
      this.t[at] = time;
      this.v[at] = value;
      if (this.length < cap) {
        this.length += 1;
      } else {
        this.start = (this.start + 1) % cap;
      }
    }

    forEach(fn) {
      const cap = this.t.length;
      for (let i = 0; i < this.length; i += 1) {
        const k = (this.start + i) % cap;
        fn(this.t[k], this.v[k]);
      }
    }

    oldest() {
      return this.length ? this.t[this.start] : Infinity;
    }

    max() {
      let m = 0;
      this.forEach((_, v) => {
        if (Number.isFinite(v) && v > m) m = v;
      });
      return m;
    }
  }

  // ---- formatting -------------------------------------------------------------

  function num(value) {
    return typeof value === "number" && Number.isFinite(value) ? value : NaN;
  }

  function fixed(value, digits) {
    return Number.isFinite(value) ? value.toFixed(digits) : "n/a";
  }

  function gib(bytes) {
    return (bytes / GIB).toFixed(bytes >= 100 * GIB ? 0 : 1);
  }

  function clockText(date) {
    return date.toLocaleTimeString([], { hour12: false });
  }

  function ageText(ms) {
    const s = Math.max(0, Math.round(ms / 1000));
    if (s < 120) return s + " s ago";
    return Math.round(s / 60) + " min ago";
  }

  function setText(el, text) {
    if (el && el.textContent !== text) el.textContent = text;
  }

  function setValue(el, text, value) {
    if (!el) return;
    setText(el, text);
    el.setAttribute("data-value", Number.isFinite(value) ? String(value) : "");
  }

  function setLevel(el, value, warnAt, critAt) {
    if (!el) return;
    el.classList.toggle("warn", Number.isFinite(value) && value >= warnAt && value < critAt);
    el.classList.toggle("crit", Number.isFinite(value) && value >= critAt);
  }

  function setBar(el, percent) {
    if (!el) return;
    const p = Number.isFinite(percent) ? Math.min(100, Math.max(0, percent)) : 0;
    el.style.width = p.toFixed(1) + "%";
  }

  // ---- charts -----------------------------------------------------------------

  function niceCeiling(value) {
    if (!(value > 0)) return 1;
    const step = Math.pow(10, Math.floor(Math.log10(value)));
    for (const m of [1, 2, 2.5, 5, 10]) {
      if (m * step >= value) return m * step;
    }
    return 10 * step;
  }

  function drawChart(canvas, ring, color, yMax, now) {
    const ratio = window.devicePixelRatio || 1;
    const cssWidth = canvas.clientWidth;
    const cssHeight = canvas.clientHeight;
    if (cssWidth === 0 || cssHeight === 0) return;
    const width = Math.round(cssWidth * ratio);
    const height = Math.round(cssHeight * ratio);
    if (canvas.width !== width || canvas.height !== height) {
      canvas.width = width;
      canvas.height = height;
    }
    const ctx = canvas.getContext("2d");
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    ctx.clearRect(0, 0, cssWidth, cssHeight);

    ctx.strokeStyle = "#222a34";
    ctx.lineWidth = 1;
    ctx.beginPath();
    for (const f of [0, 0.5]) {
      const y = Math.round(f * (cssHeight - 1)) + 0.5;
      ctx.moveTo(0, y);
      ctx.lineTo(cssWidth, y);
    }
    ctx.stroke();

    ctx.fillStyle = "#6c7685";
    ctx.font = "10px system-ui, sans-serif";
    ctx.textBaseline = "top";
    ctx.fillText(String(yMax), 2, 1);

    const span = Math.min(WINDOW_MS, Math.max(MIN_WINDOW_MS, now - ring.oldest()));
    const x = (t) => ((t - (now - span)) / span) * cssWidth;
    const y = (v) => cssHeight - 1 - (Math.min(v, yMax) / yMax) * (cssHeight - 2);

    // Area under the line, then the line; NaN breaks both into segments.
    const segments = [];
    let current = [];
    let segmentFrom = NaN; // time of the current segment's first point
    let lastSegmentMs = 0;
    ring.forEach((t, v) => {
      if (t < now - span) return;
      if (Number.isFinite(v)) {
        if (!current.length) segmentFrom = t;
        current.push([x(t), y(v)]);
        lastSegmentMs = t - segmentFrom;
      } else if (current.length) {
        segments.push(current);
        current = [];
      }
    });
    if (current.length) segments.push(current);
    // What is drawn, for tests and the curious: how many lines, and the time the last covers.
    canvas.setAttribute("data-segments", String(segments.length));
    canvas.setAttribute("data-last-segment-ms", String(Math.round(lastSegmentMs)));

    for (const seg of segments) {
      ctx.beginPath();
      ctx.moveTo(seg[0][0], cssHeight);
      for (const [px, py] of seg) ctx.lineTo(px, py);
      ctx.lineTo(seg[seg.length - 1][0], cssHeight);
      ctx.closePath();
      ctx.globalAlpha = 0.18;
      ctx.fillStyle = color;
      ctx.fill();
      ctx.globalAlpha = 1;

      ctx.beginPath();
      seg.forEach(([px, py], i) => (i ? ctx.lineTo(px, py) : ctx.moveTo(px, py)));
      ctx.strokeStyle = color;
      ctx.lineWidth = 1.5;
      ctx.stroke();
    }
  }

  // ---- GPU cards --------------------------------------------------------------

  const gpuGrid = document.getElementById("gpus");
  const cardTemplate = document.getElementById("gpu-card");
  let cards = []; // index -> card state

  function makeCard(index) {
    const node = cardTemplate.content.firstElementChild.cloneNode(true);
    node.setAttribute("data-gpu-index", String(index));
    const field = (name) => node.querySelector('[data-field="' + name + '"]');
    const chart = (name) => node.querySelector('[data-chart="' + name + '"]');
    const bar = (name) => node.querySelector('[data-bar="' + name + '"]');
    return {
      node,
      uuid: null,
      fields: {
        index: field("index"),
        name: field("name"),
        meta: field("meta"),
        utilization: field("utilization"),
        memory: field("memory"),
        temperature: field("temperature"),
        power: field("power"),
        energy: field("energy"),
      },
      bars: { utilization: bar("utilization"), memory: bar("memory") },
      charts: {
        utilization: chart("utilization"),
        memory: chart("memory"),
        temperature: chart("temperature"),
        power: chart("power"),
      },
      series: {
        utilization: new Ring(RING_POINTS),
        memory: new Ring(RING_POINTS),
        temperature: new Ring(RING_POINTS),
        power: new Ring(RING_POINTS),
      },
      powerLimit: NaN,
    };
  }

  function syncCardCount(count) {
    while (cards.length > count) cards.pop().node.remove();
    while (cards.length < count) {
      const card = makeCard(cards.length);
      cards.push(card);
      gpuGrid.appendChild(card.node);
    }
  }

  function resetSeries(card) {
    for (const key of Object.keys(card.series)) card.series[key] = new Ring(RING_POINTS);
  }

  function updateCard(card, index, gpu, at) {
    const uuid = typeof gpu.uuid === "string" ? gpu.uuid : "";
    if (card.uuid !== uuid) {
      // A different device at this position: its history is not ours to keep.
      if (card.uuid !== null) resetSeries(card);
      card.uuid = uuid;
      card.node.setAttribute("data-gpu-uuid", uuid);
    }
    const f = card.fields;
    setText(f.index, "GPU " + index);
    setText(f.name, typeof gpu.name === "string" ? gpu.name : "");
    f.name.title = typeof gpu.name === "string" ? gpu.name : "";

    const meta = [];
    if (typeof gpu.device_type === "string" && gpu.device_type !== "GPU") meta.push(gpu.device_type);
    if (num(gpu.frequency) > 0) meta.push(gpu.frequency + " MHz");
    if (Number.isInteger(gpu.performance_state)) meta.push("P" + gpu.performance_state);
    if (num(gpu.fan_speed_rpm) > 0) meta.push(gpu.fan_speed_rpm + " RPM");
    if (uuid) meta.push(uuid);
    setText(f.meta, meta.join(" \u00b7 "));

    // all-smi sentinels: utilization/power < 0 and temperature 0 mean "unavailable".
    const util = num(gpu.utilization) >= 0 ? num(gpu.utilization) : NaN;
    const used = num(gpu.used_memory);
    const total = num(gpu.total_memory);
    const memPct = total > 0 && used >= 0 ? (100 * used) / total : NaN;
    const temp = num(gpu.temperature) > 0 ? num(gpu.temperature) : NaN;
    const power = num(gpu.power_consumption) >= 0 ? num(gpu.power_consumption) : NaN;
    const detail = gpu.detail && typeof gpu.detail === "object" ? gpu.detail : {};
    card.powerLimit = parseFloat(detail.power_limit_current || detail.power_limit_max || "");

    setValue(f.utilization, Number.isFinite(util) ? util.toFixed(1) + " %" : "n/a", util);
    setBar(card.bars.utilization, util);
    setValue(
      f.memory,
      Number.isFinite(memPct) ? gib(used) + " / " + gib(total) + " GiB" : "n/a",
      used
    );
    setBar(card.bars.memory, memPct);
    setLevel(card.bars.memory, memPct, 90, 98);
    setValue(f.temperature, Number.isFinite(temp) ? temp.toFixed(0) + " \u00b0C" : "n/a", temp);
    setLevel(f.temperature, temp, 80, 90);
    setValue(f.power, Number.isFinite(power) ? fixed(power, power < 100 ? 1 : 0) + " W" : "n/a", power);

    card.node.classList.remove("stale");
    card.node.removeAttribute("data-stale");
    const gapMs = gapAfterMs();
    card.series.utilization.add(at, util, gapMs);
    card.series.memory.add(at, memPct, gapMs);
    card.series.temperature.add(at, temp, gapMs);
    card.series.power.add(at, power, gapMs);
  }

  // A frame without `gpus` (the GPU reader timed out or failed): the cards and their
  // history stay, the charts get a gap, and the card says its figures are stale.
  function markCardStale(card, at) {
    card.node.classList.add("stale");
    card.node.setAttribute("data-stale", "");
    for (const ring of Object.values(card.series)) ring.add(at, NaN, 0);
  }

  function drawCard(card, now) {
    const s = card.series;
    drawChart(card.charts.utilization, s.utilization, COLORS.utilization, 100, now);
    drawChart(card.charts.memory, s.memory, COLORS.memory, 100, now);
    drawChart(card.charts.temperature, s.temperature, COLORS.temperature, niceCeiling(Math.max(100, s.temperature.max())), now);
    const powerTop = Math.max(s.power.max(), Number.isFinite(card.powerLimit) ? card.powerLimit : 0);
    drawChart(card.charts.power, s.power, COLORS.power, niceCeiling(powerTop), now);
  }

  // ---- host panels ------------------------------------------------------------

  function panel(id) {
    const node = document.getElementById(id);
    return {
      field: (name) => node.querySelector('[data-field="' + name + '"]'),
      bar: node.querySelector('[data-bar="utilization"]'),
      chart: node.querySelector("canvas"),
      ring: new Ring(RING_POINTS),
    };
  }

  const cpuPanel = panel("cpu");
  const memPanel = panel("memory");
  const chassisPanel = panel("chassis");

  function updateHost(snap, at) {
    const cpus = Array.isArray(snap.cpus) ? snap.cpus : [];
    let cpuUtil = NaN;
    if (cpus.length) {
      // Weighted by logical cores when a host reports several CPU entries.
      let sum = 0;
      let weight = 0;
      for (const cpu of cpus) {
        const u = num(cpu.utilization);
        if (!Number.isFinite(u)) continue;
        const w = num(cpu.total_threads) > 0 ? cpu.total_threads : 1;
        sum += u * w;
        weight += w;
      }
      cpuUtil = weight ? sum / weight : NaN;
      const model = typeof cpus[0].cpu_model === "string" ? cpus[0].cpu_model : "";
      const threads = num(cpus[0].total_threads);
      setText(cpuPanel.field("model"), model + (threads > 0 ? " \u00b7 " + threads + " threads" : ""));
    }
    setValue(cpuPanel.field("utilization"), fixed(cpuUtil, 1) + (Number.isFinite(cpuUtil) ? " %" : ""), cpuUtil);
    setBar(cpuPanel.bar, cpuUtil);
    setLevel(cpuPanel.bar, cpuUtil, 85, 95);
    cpuPanel.ring.add(at, cpuUtil, gapAfterMs());

    const mem = Array.isArray(snap.memory) && snap.memory.length ? snap.memory[0] : null;
    let memPct = NaN;
    if (mem) {
      const total = num(mem.total_bytes);
      const used = num(mem.used_bytes);
      memPct = Number.isFinite(num(mem.utilization)) ? num(mem.utilization) : (100 * used) / total;
      setText(memPanel.field("used"), total > 0 ? gib(used) + " / " + gib(total) + " GiB" : "");
    }
    setValue(memPanel.field("utilization"), fixed(memPct, 1) + (Number.isFinite(memPct) ? " %" : ""), memPct);
    setBar(memPanel.bar, memPct);
    setLevel(memPanel.bar, memPct, 90, 97);
    memPanel.ring.add(at, memPct, gapAfterMs());

    const chassis = Array.isArray(snap.chassis) && snap.chassis.length ? snap.chassis[0] : null;
    let power = chassis ? num(chassis.total_power_watts) : NaN;
    if (!Number.isFinite(power)) {
      // No chassis reading: show the sum of the GPUs' valid power draws instead.
      const gpus = Array.isArray(snap.gpus) ? snap.gpus : [];
      const draws = gpus.map((g) => num(g.power_consumption)).filter((p) => p >= 0);
      power = draws.length ? draws.reduce((a, b) => a + b, 0) : NaN;
    }
    const powerText = !Number.isFinite(power) ? "n/a" : power >= 1000 ? (power / 1000).toFixed(2) + " kW" : power.toFixed(0) + " W";
    setValue(chassisPanel.field("power"), powerText, power);
    const temps = [];
    if (chassis && Number.isFinite(num(chassis.inlet_temperature))) temps.push("inlet " + chassis.inlet_temperature.toFixed(1) + " \u00b0C");
    if (chassis && Number.isFinite(num(chassis.outlet_temperature))) temps.push("outlet " + chassis.outlet_temperature.toFixed(1) + " \u00b0C");
    setText(chassisPanel.field("temperatures"), temps.join(" \u00b7 "));
    const gpuCount = Array.isArray(snap.gpus) ? snap.gpus.length : 0;
    setText(chassisPanel.field("gpu-count"), gpuCount + (gpuCount === 1 ? " GPU" : " GPUs"));
    chassisPanel.ring.add(at, power, gapAfterMs());
  }

  // ---- energy (GET /energy: kWh since the agent started, per GPU and host) -------

  let energyByUuid = new Map();

  function kwhText(kwh) {
    if (!Number.isFinite(kwh) || kwh < 0) return "n/a";
    return fixed(kwh, kwh < 10 ? 3 : 1) + " kWh";
  }

  function showCardEnergy(card) {
    const row = energyByUuid.get(card.uuid);
    const kwh = row ? num(row.session_kwh) : NaN;
    setValue(card.fields.energy, row ? kwhText(kwh) : "\u2014", kwh);
    card.fields.energy.title = row ? "lifetime " + kwhText(num(row.total_kwh)) + (row.measured ? " (measured by the driver)" : "") : "";
  }

  function showEnergy(report) {
    const devices = report && Array.isArray(report.devices) ? report.devices : [];
    energyByUuid = new Map();
    let host = null;
    for (const row of devices) {
      if (!row || typeof row !== "object") continue;
      if (row.scope === "gpu" && typeof row.gpu_uuid === "string") energyByUuid.set(row.gpu_uuid, row);
      if (row.scope === "chassis") host = row;
    }
    for (const card of cards) showCardEnergy(card);
    const since = report && typeof report.since === "string" ? new Date(report.since) : null;
    const sinceText = since && !Number.isNaN(since.getTime()) ? " since " + clockText(since) : "";
    const el = chassisPanel.field("energy");
    setValue(el, host ? kwhText(num(host.session_kwh)) + sinceText : "", host ? num(host.session_kwh) : NaN);
    el.title = host ? "lifetime " + kwhText(num(host.total_kwh)) : "";
  }

  function pollEnergy() {
    let delay = ENERGY_POLL_MS;
    fetch(ENERGY_URL, { cache: "no-store", headers: { Accept: "application/json" } })
      .then((resp) => (resp.ok ? resp.json() : null))
      .then((report) => {
        if (!report) return;
        showEnergy(report);
        // A fresh agent has no energy until its second frame: ask again soon.
        if (report.since && !(Array.isArray(report.devices) && report.devices.length)) delay = ENERGY_FIRST_POLL_MS;
      })
      .catch(() => {}) // unreachable or not JSON: the next poll tries again
      .finally(() => window.setTimeout(pollEnergy, delay));
  }

  function drawHost(now) {
    drawChart(cpuPanel.chart, cpuPanel.ring, COLORS.utilization, 100, now);
    drawChart(memPanel.chart, memPanel.ring, COLORS.memory, 100, now);
    drawChart(chassisPanel.chart, chassisPanel.ring, COLORS.power, niceCeiling(chassisPanel.ring.max()), now);
  }

  // ---- notices ----------------------------------------------------------------

  const notices = document.getElementById("notices");
  const lagList = document.getElementById("lag-notices");
  const lagTotal = document.getElementById("lag-total");
  let droppedTotal = 0;

  function pushNotice(item) {
    lagList.insertBefore(item, lagList.firstChild);
    while (lagList.children.length > MAX_NOTICES) lagList.lastChild.remove();
    notices.hidden = false;
  }

  function addLagNotice(dropped) {
    droppedTotal += dropped;
    setValue(lagTotal, String(droppedTotal), droppedTotal);
    const item = document.createElement("li");
    item.setAttribute("data-dropped", String(dropped));
    item.textContent = clockText(new Date()) + ": the stream fell behind and skipped " + dropped + " frame(s)";
    pushNotice(item);
  }

  // After the stream was lost and opened again: the server resends the frames it still
  // holds (plotted at their own times); `missed` is how many it no longer held.
  function addReconnectNotice(missed) {
    const item = document.createElement("li");
    item.setAttribute("data-reconnected", String(missed));
    item.textContent =
      clockText(new Date()) +
      ": reconnected" +
      (missed > 0 ? "; " + missed + " frame(s) from the outage were no longer held" : "");
    pushNotice(item);
  }

  function addServerNotice(data) {
    let message = String(data);
    try {
      const parsed = JSON.parse(data);
      if (parsed && typeof parsed.error === "string") message = parsed.error;
    } catch (err) {
      // not JSON: show it as it came
    }
    const item = document.createElement("li");
    item.setAttribute("data-server-error", "");
    item.textContent = clockText(new Date()) + ": server error: " + message.slice(0, 500);
    pushNotice(item);
  }

  const errorBox = document.getElementById("reader-errors");
  const errorList = document.getElementById("reader-error-list");

  function showReaderErrors(errors) {
    const list = Array.isArray(errors) ? errors.slice(0, 20) : [];
    errorList.replaceChildren(
      ...list.map((e) => {
        const item = document.createElement("li");
        const section = e && typeof e.section === "string" ? e.section : "?";
        const kind = e && typeof e.kind === "string" ? e.kind : "error";
        const message = e && typeof e.message === "string" ? e.message : "";
        item.textContent = section + " (" + kind + "): " + message;
        return item;
      })
    );
    errorBox.hidden = list.length === 0;
  }

  // ---- frames -----------------------------------------------------------------

  const hostnameEl = document.getElementById("hostname");
  const lastFrameEl = document.getElementById("last-frame");
  const noGpus = document.getElementById("no-gpus");
  let lastFrameAt = 0;
  let frameGapMs = 0; // smoothed time between frames (0: unknown), for the watchdog
  let drawPending = false;
  let intervalMs = 0; // median step between recent frame timestamps (0: unknown)
  let lastStampMs = NaN;
  const steps = []; // recent steps between frame timestamps, ms
  const skews = []; // recent (arrival - frame timestamp), ms
  let reopened = false; // the stream came back after frames were seen: say so once

  let gapLimitMs = 0; // a frame further than this from the previous one leaves a gap

  function gapAfterMs() {
    return gapLimitMs;
  }

  // When a frame happened, on this browser's clock. A frame's own timestamp counts
  // (frames resent after a reconnect belong where they happened, not at "now"),
  // shifted by the smallest recent (arrival - timestamp): the server's clock offset
  // plus network delay, which resent frames only ever overstate.
  function frameTime(snap, arrival) {
    const stamp = typeof snap.timestamp === "string" ? Date.parse(snap.timestamp) : NaN;
    if (!Number.isFinite(stamp)) return arrival;
    skews.push(arrival - stamp);
    if (skews.length > SKEW_WINDOW) skews.shift();
    // Judged by the pace before this frame: its own step may be the outage.
    gapLimitMs = intervalMs > 0 ? Math.max(GAP_INTERVALS * intervalMs, 1500) : 0;
    if (Number.isFinite(lastStampMs) && stamp > lastStampMs) {
      // The median: an outage or a reader timeout does not stretch the interval.
      steps.push(stamp - lastStampMs);
      if (steps.length > 16) steps.shift();
      const sorted = steps.slice().sort((a, b) => a - b);
      intervalMs = sorted[Math.floor((sorted.length - 1) / 2)];
    }
    lastStampMs = stamp;
    return Math.min(arrival, stamp + Math.min(...skews));
  }

  function onSnapshot(event) {
    let snap;
    try {
      snap = JSON.parse(event.data);
    } catch (err) {
      return; // a malformed frame is skipped; the next one will do
    }
    if (!snap || typeof snap !== "object") return;
    const now = Date.now();
    const gap = lastFrameAt ? now - lastFrameAt : 0;
    if (gap > 50) {
      // (frames replayed after a reconnect arrive back to back and say nothing of the pace)
      frameGapMs = frameGapMs ? 0.8 * frameGapMs + 0.2 * gap : gap;
    }
    lastFrameAt = now;
    backoffMs = BACKOFF_MIN_MS;
    setState("live");

    if (reopened) {
      reopened = false;
      addReconnectNotice(0);
    }
    const at = frameTime(snap, now);

    const hostname = typeof snap.hostname === "string" ? snap.hostname : "";
    setText(hostnameEl, hostname || "\u2014");
    document.title = (hostname ? hostname + " \u00b7 " : "") + "smicast";
    setText(lastFrameEl, clockText(new Date(now)));
    lastFrameEl.setAttribute("datetime", new Date(now).toISOString());

    if (Array.isArray(snap.gpus)) {
      const gpus = snap.gpus;
      syncCardCount(gpus.length);
      gpus.forEach((gpu, i) => updateCard(cards[i], i, gpu && typeof gpu === "object" ? gpu : {}, at));
    } else {
      for (const card of cards) markCardStale(card, at);
    }
    for (const card of cards) showCardEnergy(card);
    noGpus.hidden = cards.length > 0;
    updateHost(snap, at);
    showReaderErrors(snap.errors);
    scheduleDraw();
  }

  function scheduleDraw() {
    if (drawPending) return;
    drawPending = true;
    requestAnimationFrame(() => {
      drawPending = false;
      const now = Date.now();
      for (const card of cards) drawCard(card, now);
      drawHost(now);
    });
  }

  function onLag(event) {
    let dropped = 0;
    try {
      dropped = Number(JSON.parse(event.data).dropped);
    } catch (err) {
      dropped = NaN;
    }
    const count = Number.isFinite(dropped) && dropped > 0 ? Math.floor(dropped) : 0;
    if (reopened) {
      // The first event after a reconnect: frames missed while away, not a slow client.
      reopened = false;
      addReconnectNotice(count);
      return;
    }
    addLagNotice(count);
  }

  // ---- connection -------------------------------------------------------------

  const connectionEl = document.getElementById("connection");
  const stateEl = document.getElementById("connection-state");
  const detailEl = document.getElementById("connection-detail");
  let source = null;
  let backoffMs = BACKOFF_MIN_MS;
  let retryTimer = 0;
  let retryAt = 0;
  let openedAt = 0;

  function setState(state) {
    connectionEl.setAttribute("data-state", state);
    setText(stateEl, state);
    renderDetail();
  }

  function renderDetail() {
    const state = connectionEl.getAttribute("data-state");
    let text = "";
    if (state !== "live" && lastFrameAt) text = "last frame " + ageText(Date.now() - lastFrameAt);
    if (retryTimer) {
      const wait = Math.max(0, Math.ceil((retryAt - Date.now()) / 1000));
      text += (text ? ", " : "") + "retrying in " + wait + " s";
    }
    setText(detailEl, text);
  }

  function connect() {
    retryTimer = 0;
    if (source) source.close();
    setState(lastFrameAt ? "reconnecting" : "connecting");
    const es = new EventSource(STREAM_URL);
    es.addEventListener("open", () => {
      openedAt = Date.now();
      if (lastFrameAt) reopened = true;
    });
    es.addEventListener("snapshot", onSnapshot);
    es.addEventListener("lag", onLag);
    es.addEventListener("error", (event) => {
      if (es !== source) return;
      if (event instanceof MessageEvent) {
        // `event: error` sent by the server (a frame it could not encode); the
        // stream itself is fine.
        addServerNotice(event.data);
        return;
      }
      if (es.readyState === EventSource.CLOSED) {
        // The browser gave up (an HTTP error, a 503 over the subscriber cap, a
        // wrong content type): start again ourselves, with backoff.
        scheduleReconnect();
      } else {
        setState(lastFrameAt ? "reconnecting" : "connecting");
      }
    });
    source = es;
  }

  function scheduleReconnect() {
    if (retryTimer) return;
    if (source) source.close();
    const delay = backoffMs * (0.8 + 0.4 * Math.random());
    backoffMs = Math.min(BACKOFF_MAX_MS, backoffMs * 2);
    retryAt = Date.now() + delay;
    retryTimer = window.setTimeout(connect, delay);
    setState(lastFrameAt ? "reconnecting" : "connecting");
  }

  // A stream can go quiet without an error (a suspended laptop, a proxy that lost
  // the upstream): if no frame came for several intervals, open a new one.
  window.setInterval(() => {
    renderDetail();
    if (!frameGapMs || retryTimer) return; // the pace is known after two frames
    const staleAfter = Math.max(STALE_MIN_MS, 4 * frameGapMs);
    const quietFor = Date.now() - Math.max(lastFrameAt, openedAt);
    if (quietFor > staleAfter && source && source.readyState === EventSource.OPEN) {
      scheduleReconnect();
    }
  }, 1000);

  window.addEventListener("resize", scheduleDraw);
  document.addEventListener("visibilitychange", () => {
    if (!document.hidden) scheduleDraw();
  });

  connect();
  pollEnergy();
})();
