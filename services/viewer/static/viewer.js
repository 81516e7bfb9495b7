// The footage viewer's page: timelines from /api/day, playback from /media/ in two <video>
// elements (the next segment waits, loaded, behind the one playing), clips from /clip. Each
// segment's codec comes from /api/codec when it is opened (and the first of each camera's day):
// H.265 is marked, and where this browser cannot play it a download link replaces the player.
"use strict";

const zone = Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
const state = { day: null, dayIn: "utc", date: null, play: null, selection: null };
const $ = (id) => document.getElementById(id);
const screens = [$("screen-a"), $("screen-b")];

// ---- time ------------------------------------------------------------------------------------
const pad = (n) => String(n).padStart(2, "0");
const utcClock = (t) => new Date(t * 1000).toISOString().slice(11, 19);
const localClock = (t) => new Date(t * 1000).toLocaleTimeString("en-GB", { hour12: false, timeZone: zone });
const localDate = (t) => new Date(t * 1000).toLocaleDateString("en-CA", { timeZone: zone });
function todayIn(dayIn) {
  const now = Date.now() / 1000;
  return dayIn === "utc" ? new Date(now * 1000).toISOString().slice(0, 10) : localDate(now);
}
function shiftDate(text, days) {
  const [y, m, d] = text.split("-").map(Number);
  const moved = new Date(Date.UTC(y, m - 1, d + days));
  return `${moved.getUTCFullYear()}-${pad(moved.getUTCMonth() + 1)}-${pad(moved.getUTCDate())}`;
}
function duration(seconds) {
  if (seconds < 60) return `${seconds.toFixed(seconds < 10 ? 1 : 0)} s`;
  const m = Math.floor(seconds / 60), s = Math.round(seconds % 60);
  if (m < 60) return `${m} min ${pad(s)} s`;
  return `${Math.floor(m / 60)} h ${pad(m % 60)} min`;
}
const both = (t) => `${utcClock(t)} UTC / ${localClock(t)} ${zone}`;

// ---- the day ---------------------------------------------------------------------------------
function fromAddress() {
  const q = new URLSearchParams(location.search);
  state.dayIn = q.get("in") === "local" ? "local" : "utc";
  state.date = q.get("date") || todayIn(state.dayIn);
  const t = q.get("t"), camera = q.get("camera");
  return t && camera ? { camera: Number(camera), t: isNaN(Number(t)) ? Date.parse(t) / 1000 : Number(t) } : null;
}

function address(extra) {
  const q = new URLSearchParams({ date: state.date, in: state.dayIn, ...(extra || {}) });
  return `?${q}`;
}

async function loadDay(push) {
  if (push) history.pushState(null, "", address());
  $("date").value = state.date;
  document.querySelector(`input[name=day-in][value=${state.dayIn}]`).checked = true;
  const response = await fetch(`/api/day${address({ tz: zone })}`, { cache: "no-store" });
  const data = await response.json();
  if (!response.ok) { showProblem(data.error || response.statusText); return null; }
  state.day = data;
  showProblem(data.problem);
  $("day-range").textContent = `${data.start_utc.replace("+00:00", " UTC")} to ${data.end_utc.replace("+00:00", " UTC")}` +
    ` (${duration(data.end - data.start)}); local ${zone}: ${localDate(data.start)} ${localClock(data.start)}` +
    ` to ${localDate(data.end)} ${localClock(data.end)}`;
  draw();
  return data;
}

function showProblem(text) {
  $("problem").hidden = !text;
  $("problem").textContent = text || "";
}

const position = (t) => (100 * (t - state.day.start)) / (state.day.end - state.day.start);
function place(element, start, end) {
  const left = Math.max(0, position(start)), right = Math.min(100, position(end));
  element.style.left = `${left}%`;
  element.style.width = `${Math.max(right - left, 0.05)}%`;
  return element;
}
function div(className, attributes) {
  const element = document.createElement("div");
  element.className = className;
  Object.entries(attributes || {}).forEach(([k, v]) => element.setAttribute(k, v));
  return element;
}

function draw() {
  const day = state.day, root = $("timelines");
  root.replaceChildren();
  if (!day.cameras.length) {
    root.innerHTML = "<p class='muted'>No camera recorded anything this day.</p>";
    return;
  }
  for (const camera of day.cameras) {
    const box = div("camera", { "data-camera": camera.camera, "data-percent": camera.percent.toFixed(2) });
    const title = div("title");
    title.innerHTML = `<strong></strong><span class="percent"></span><span class="muted summary"></span>`;
    title.querySelector("strong").textContent = `${camera.name} (camera ${camera.camera})`;
    title.querySelector(".percent").textContent = `${camera.percent.toFixed(2)}% covered`;
    title.querySelector(".summary").textContent = `${duration(camera.covered_seconds)} recorded, ` +
      `${camera.segments} segments, ${camera.gaps.length} gaps`;
    const bar = div("bar", { role: "slider", "aria-label": `timeline of camera ${camera.camera}` });
    for (const piece of camera.pieces) {
      const p = place(div(`piece ${piece.where}`, { "data-name": piece.name }), piece.start, piece.end);
      p.title = `${piece.name}${piece.where === "local" ? " (on this host only, not in the bucket yet)" : ""}`;
      bar.append(p);
    }
    for (const gap of camera.gaps) {
      const g = place(div("gap", { "data-start": gap.start, "data-end": gap.end, "data-seconds": gap.seconds }),
        gap.start, gap.end);
      g.title = `gap ${utcClock(gap.start)} - ${utcClock(gap.end)} UTC (${duration(gap.seconds)})`;
      bar.append(g);
    }
    attachPointer(bar, camera);
    box.append(title, bar, axis(day));
    if (camera.gaps.length) box.append(gapList(camera));
    root.append(box);
    if (camera.pieces.length) {
      codecOf(camera.camera, camera.pieces[0]).then((info) => markCamera(camera.camera, info));
    }
    for (const piece of camera.pieces.slice(1)) {
      if (codecs.has(codecKey(camera.camera, piece))) codecOf(camera.camera, piece);   // known: mark again
    }
  }
  drawSelection();
  drawCursor();
}

// ---- codecs ------------------------------------------------------------------------------------
const hevcPlayable = ["hvc1", "hev1", "hvc1.1.6.L93.B0", "hev1.1.6.L93.B0"]
  .some((c) => screens[0].canPlayType(`video/mp4; codecs="${c}"`) !== "");
const codecs = new Map();   // "camera/segment" -> promise of {codec, entry}, asked once per page
const codecKey = (cameraId, piece) => `${cameraId}/${piece.name}`;
const playable = (info) => info.codec !== "hevc" || hevcPlayable;

function codecOf(cameraId, piece) {
  const key = codecKey(cameraId, piece);
  if (!codecs.has(key)) {
    codecs.set(key, fetch(`/api/codec/${cameraId}/${encodeURIComponent(piece.name)}`, { cache: "no-store" })
      .then((r) => (r.ok ? r.json() : { codec: null })).catch(() => ({ codec: null })));
  }
  return codecs.get(key).then((info) => { piece.codec = info; markPiece(cameraId, piece, info); return info; });
}

function markPiece(cameraId, piece, info) {
  const selector = `.camera[data-camera="${cameraId}"] .piece[data-name="${CSS.escape(piece.name)}"]`;
  const element = document.querySelector(selector);
  if (!element || !info.codec) return;
  element.dataset.codec = info.codec;
  if (info.codec !== "hevc" || element.classList.contains("hevc")) return;
  element.classList.add("hevc");
  element.classList.toggle("unplayable", !hevcPlayable);
  element.title += hevcPlayable ? " (H.265)" : " (H.265: this browser cannot play it, a click offers a download)";
}

function markCamera(cameraId, info) {
  const box = document.querySelector(`.camera[data-camera="${cameraId}"]`);
  if (!box || !info.codec) return;
  box.dataset.codec = info.codec;
  if (info.codec !== "hevc" || box.querySelector(".title .codec")) return;
  const badge = document.createElement("span");
  badge.className = `codec${hevcPlayable ? "" : " unplayable"}`;
  badge.textContent = hevcPlayable ? "H.265" : "H.265: not playable in this browser, download instead";
  box.querySelector(".title").append(badge);
}

function offerDownload(camera, index, info) {
  const piece = camera.pieces[index];
  state.play = null;
  screens.forEach((video) => video.pause());
  $("player").hidden = true;
  $("download-why").textContent = `Camera ${camera.camera}, segment ${piece.name} (${both(piece.start)}) is ` +
    `H.265 ('${info.entry}'), which this browser cannot play.`;
  $("download-link").href = `${mediaUrl(camera.camera, piece)}?download=1`;
  const q = new URLSearchParams({ camera: camera.camera, start: Math.floor(piece.start), end: Math.ceil(piece.end) });
  $("download-clip").href = `/clip?${q}`;
  $("download").hidden = false;
}

function axis(day) {
  const element = div("axis");
  const every = Math.max(1, Math.ceil(day.ticks.length / 12));
  day.ticks.forEach((tick, index) => {
    if (index % every) return;
    for (const [cls, text] of [["utc", `${tick.utc} UTC`], ["local", tick.local]]) {
      const label = document.createElement("span");
      label.className = cls;
      label.textContent = index === 0 || cls === "local" ? text : tick.utc;
      label.style.left = `${position(tick.at)}%`;
      if (index === 0) label.style.transform = "none";   // the day's first mark starts at the edge
      element.append(label);
    }
  });
  return element;
}

function gapList(camera) {
  const details = document.createElement("details");
  details.className = "gaps";
  const summary = document.createElement("summary");
  summary.textContent = `${camera.gaps.length} gaps, ${duration(camera.gaps.reduce((a, g) => a + g.seconds, 0))} in all`;
  const list = document.createElement("ul");
  for (const gap of camera.gaps) {
    const item = document.createElement("li");
    item.textContent = `${utcClock(gap.start)} - ${utcClock(gap.end)} UTC (${localClock(gap.start)} - ` +
      `${localClock(gap.end)} local): ${duration(gap.seconds)}`;
    list.append(item);
  }
  details.append(summary, list);
  return details;
}

// ---- pointer: click plays, drag chooses a clip -------------------------------------------------
function timeAt(bar, clientX) {
  const box = bar.getBoundingClientRect();
  const fraction = Math.min(1, Math.max(0, (clientX - box.left) / box.width));
  return state.day.start + fraction * (state.day.end - state.day.start);
}
function attachPointer(bar, camera) {
  let down = null;
  bar.addEventListener("pointerdown", (event) => { down = event.clientX; bar.setPointerCapture(event.pointerId); });
  bar.addEventListener("pointerup", (event) => {
    if (down === null) return;
    const a = timeAt(bar, down), b = timeAt(bar, event.clientX), moved = Math.abs(event.clientX - down);
    down = null;
    if (moved < 4) playAt(camera.camera, b);
    else choose(camera.camera, Math.min(a, b), Math.max(a, b));
  });
}

function choose(camera, start, end) {
  state.selection = { camera, start: Math.floor(start), end: Math.ceil(end) };
  const q = new URLSearchParams({ camera, start: state.selection.start, end: state.selection.end });
  $("clip-link").href = `/clip?${q}`;
  $("clip-camera").textContent = camera;
  $("clip-range").textContent = `${both(state.selection.start)} to ${utcClock(state.selection.end)} UTC ` +
    `(${duration(state.selection.end - state.selection.start)})`;
  $("clip").hidden = false;
  drawSelection();
}
function drawSelection() {
  document.querySelectorAll(".bar .selection").forEach((e) => e.remove());
  const s = state.selection;
  if (!s || !state.day) return;
  const bar = document.querySelector(`.camera[data-camera="${s.camera}"] .bar`);
  if (bar) bar.append(place(div("selection"), s.start, s.end));
}

// ---- playback ----------------------------------------------------------------------------------
const cameraOf = (id) => state.day && state.day.cameras.find((c) => c.camera === id);
const mediaUrl = (camera, piece) => `/media/${camera}/${encodeURIComponent(piece.name)}`;

function pieceFor(camera, t) {
  const pieces = camera.pieces;
  let index = pieces.findIndex((p) => p.start <= t && t < p.end);
  if (index < 0) index = pieces.findIndex((p) => p.start > t);
  return index;
}

function load(video, camera, index, offset) {
  const piece = camera.pieces[index];
  video.dataset.camera = camera.camera;
  video.dataset.index = index;
  video.dataset.offset = offset;
  video.dataset.ready = "";
  const url = mediaUrl(camera.camera, piece);
  const seek = () => {
    if (Math.abs(video.currentTime - offset) > 0.25) video.currentTime = offset;
    video.dataset.ready = "1";
  };
  if (video.dataset.url === url && video.readyState >= 1) { seek(); return; }
  video.dataset.url = url;
  video.addEventListener("loadedmetadata", seek, { once: true });
  video.src = url;
  video.load();
}

let opening = 0;   // the latest click wins when codecs arrive out of order
function playAt(cameraId, t) {
  const camera = cameraOf(cameraId);
  if (!camera || !camera.pieces.length) return;
  const index = pieceFor(camera, t);
  if (index < 0) return;
  const piece = camera.pieces[index];
  const offset = Math.max(0, t - piece.start), mine = ++opening;
  codecOf(cameraId, piece).then((info) => {
    if (mine !== opening) return;
    if (playable(info)) play(camera, index, offset);
    else offerDownload(camera, index, info);
  });
}

function play(camera, index, offset) {
  const cameraId = camera.camera, piece = camera.pieces[index];
  const [active, standby] = screens;
  state.play = { camera: cameraId, index };
  $("download").hidden = true;
  $("player").hidden = false;
  active.hidden = false;
  standby.hidden = true;
  standby.pause();
  load(active, camera, index, offset);
  active.play().catch(() => {});
  prepareNext();
  history.replaceState(null, "", address({ camera: cameraId, t: (piece.start + offset).toFixed(1) }));
  showNowPlaying();
}

function prepareNext() {
  const camera = cameraOf(state.play.camera), next = state.play.index + 1;
  if (next >= camera.pieces.length) return;
  const current = camera.pieces[state.play.index], following = camera.pieces[next];
  codecOf(camera.camera, following).then((info) => {
    const still = state.play && state.play.camera === camera.camera && state.play.index + 1 === next;
    if (still && playable(info)) load(screens[1], camera, next, Math.max(0, current.end - following.start));
  });
}

function advance() {
  const camera = cameraOf(state.play && state.play.camera);
  if (!camera || state.play.index + 1 >= camera.pieces.length) return;
  const following = camera.pieces[state.play.index + 1];
  if (!following.codec || !playable(following.codec)) {   // not prepared behind this one
    playAt(camera.camera, Math.max(following.start, camera.pieces[state.play.index].end));
    return;
  }
  screens.reverse();
  const [active, standby] = screens;
  state.play.index += 1;
  active.hidden = false;
  active.play().catch(() => {});
  standby.hidden = true;
  standby.pause();
  prepareNext();
  showNowPlaying();
}

function now() {
  if (!state.play) return null;
  const piece = cameraOf(state.play.camera).pieces[state.play.index];
  return piece.start + screens[0].currentTime;
}

function showNowPlaying() {
  const t = now();
  if (t === null) return;
  const piece = cameraOf(state.play.camera).pieces[state.play.index];
  $("now-playing").textContent = `camera ${state.play.camera}, ${both(t)}, segment ${piece.name}` +
    (piece.where === "local" ? " (this host's copy)" : "");
  drawCursor();
}
function drawCursor() {
  document.querySelectorAll(".bar .cursor").forEach((e) => e.remove());
  const t = now();
  if (t === null || !state.day || t < state.day.start || t > state.day.end) return;
  const bar = document.querySelector(`.camera[data-camera="${state.play.camera}"] .bar`);
  if (bar) { const c = div("cursor"); c.style.left = `${position(t)}%`; bar.append(c); }
}

for (const video of screens) {
  video.addEventListener("ended", () => { if (video === screens[0]) advance(); });
  video.addEventListener("timeupdate", () => { if (video === screens[0]) showNowPlaying(); });
}

function jumpGap(direction) {
  const t = now();
  if (t === null) return;
  const gaps = cameraOf(state.play.camera).gaps;
  const gap = direction > 0 ? gaps.find((g) => g.start > t) : [...gaps].reverse().find((g) => g.end < t - 2);
  if (gap) playAt(state.play.camera, gap.end);
}

document.addEventListener("keydown", (event) => {
  if (event.target.tagName === "INPUT" || event.altKey || event.ctrlKey || event.metaKey || $("footage").hidden) return;
  const t = now();
  if (event.key === "ArrowRight" && t !== null) playAt(state.play.camera, t + 10);
  else if (event.key === "ArrowLeft" && t !== null) playAt(state.play.camera, t - 10);
  else if (event.key === "n") jumpGap(1);
  else if (event.key === "p") jumpGap(-1);
  else if (event.key === " " && t !== null) screens[0].paused ? screens[0].play() : screens[0].pause();
  else if (event.key === "PageUp") moveDay(-1);
  else if (event.key === "PageDown") moveDay(1);
  else return;
  event.preventDefault();
});

// ---- controls ----------------------------------------------------------------------------------
function moveDay(days) { state.date = shiftDate(state.date, days); loadDay(true); }
$("prev-day").addEventListener("click", () => moveDay(-1));
$("next-day").addEventListener("click", () => moveDay(1));
$("date").addEventListener("change", () => { if ($("date").value) { state.date = $("date").value; loadDay(true); } });
document.querySelectorAll("input[name=day-in]").forEach((radio) => radio.addEventListener("change", () => {
  state.dayIn = radio.value;
  loadDay(true);
}));
$("clip-clear").addEventListener("click", () => { state.selection = null; $("clip").hidden = true; drawSelection(); });
window.addEventListener("popstate", () => { fromAddress(); loadDay(false); });
$("zone-name").textContent = zone;

// What the browser test reads (and a curious operator in the console).
window.viewerState = () => ({
  camera: state.play && state.play.camera,
  segment: state.play && cameraOf(state.play.camera).pieces[state.play.index].name,
  time: now(), paused: screens[0].paused, currentTime: screens[0].currentTime, ready: screens[0].dataset.ready === "1",
  src: screens[0].currentSrc, loaded: Boolean(state.day), zone, readyState: screens[0].readyState,
  error: screens[0].error && `${screens[0].error.code} ${screens[0].error.message}`,
  hevcPlayable, download: $("download").hidden ? null : $("download-link").getAttribute("href"),
});

(async () => {
  const deepLink = fromAddress();
  if (await loadDay(false) && deepLink) playAt(deepLink.camera, deepLink.t);
})();
