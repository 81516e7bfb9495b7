// The page's second tab: this host's status (/api/status: the `status` command's own figures, as
// host_status.py shapes them), refreshed every 10 s while the tab is shown. The footage tab is viewer.js's.
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);
  let timer = null;

  const size = (bytes) => {
    const units = ["B", "KB", "MB", "GB", "TB"];
    let value = bytes, unit = 0;
    while (value >= 1024 && unit < units.length - 1) { value /= 1024; unit += 1; }
    return unit ? `${value.toFixed(1)} ${units[unit]}` : `${value} B`;
  };
  const ago = (seconds) => {
    if (seconds === null || seconds === undefined) return "never";
    if (seconds < 120) return `${Math.max(0, seconds).toFixed(0)} s ago`;
    if (seconds < 7200) return `${(seconds / 60).toFixed(0)} min ago`;
    return `${(seconds / 3600).toFixed(1)} h ago`;
  };

  function row(cells, bad) {
    const tr = document.createElement("tr");
    cells.forEach((text, index) => {
      const td = document.createElement("td");
      td.textContent = text === null || text === undefined || text === "" ? "-" : String(text);
      if (bad && index === 1) td.className = "bad";
      tr.append(td);
    });
    return tr;
  }

  const plural = (count, word) => `${count} ${word}${count > 1 ? "s" : ""}`;

  // The problems' list is the page's; the warnings' is made once, under it (status lists them apart).
  function list(id, texts) {
    let element = $(id);
    if (!element) {
      element = document.createElement("ul");
      element.id = id;
      element.className = "muted";
      $("status-problems").after(element);
    }
    element.replaceChildren(...texts.map((text) => {
      const item = document.createElement("li");
      item.textContent = text;
      return item;
    }));
    element.hidden = !texts.length;
  }

  function show(data) {
    const counts = [];
    if (data.problems.length) counts.push(plural(data.problems.length, "problem"));
    if (data.warnings.length) counts.push(plural(data.warnings.length, "warning"));
    $("status-summary").textContent = data.problems.length ? counts.join(", ")
      : ["OK", ...counts].join(", ") + (data.warnings.length ? "" : ": nothing to report");
    $("status-summary").dataset.problems = data.problems.length;
    $("status-summary").dataset.warnings = data.warnings.length;
    list("status-problems", data.problems);
    list("status-warnings", data.warnings);
    $("status-services").tBodies[0].replaceChildren(...data.services.map((s) => {
      const tr = row([s.name, s.text], !s.running);
      tr.dataset.service = s.name;
      return tr;
    }));
    $("status-cameras").tBodies[0].replaceChildren(...data.cameras.map((c) => {
      const video = ({ h264: "H.264", hevc: "H.265" })[c.video_codec] || c.video_codec;
      const kbits = (c.bitrate || "").replace("kbits/s", "").trim();
      const tr = row([`${c.id} ${c.name || ""}`.trim(), c.state + (c.reason ? ` (${c.reason})` : ""), video, c.fps,
        kbits, c.restarts, ago(c.last_segment_age)], c.state !== "recording");
      tr.dataset.camera = c.id;
      tr.dataset.state = c.state;
      return tr;
    }));
    const figures = [
      ["upload backlog",
        `${data.backlog.files} files, ${size(data.backlog.bytes)}, oldest ${ago(data.backlog.oldest_age)}`],
      ["last upload", data.last_upload ? `${ago(data.last_upload.age)} (${data.last_upload.file})` : "never"],
      ["last error", data.last_error ? `${data.last_error.message} (${ago(data.last_error.age)})` : "none"],
      ["kept locally", `${data.kept.files} uploaded files, ${size(data.kept.bytes)}`],
      ["disk", data.disk.total == null ? "size unknown (the file system reports none)"
        : `${size(data.disk.free)} free of ${size(data.disk.total)}`],
    ];
    $("status-figures").replaceChildren(...figures.flatMap(([name, text]) => {
      const dt = document.createElement("dt"), dd = document.createElement("dd");
      dt.textContent = name;
      dd.textContent = text;
      dd.dataset.figure = name;
      return [dt, dd];
    }));
  }

  async function refresh() {
    try {
      const response = await fetch("/api/status", { cache: "no-store" });
      const data = await response.json();
      if (!response.ok) throw new Error(data.error || response.statusText);
      show(data);
    } catch (error) {
      $("status-summary").textContent = `status not available: ${error.message}`;
    }
  }

  function choose(tab) {
    const status = tab === "status";
    $("status").hidden = !status;
    $("footage").hidden = status;
    $("footage-controls").hidden = status;
    $("tab-status").setAttribute("aria-selected", String(status));
    $("tab-footage").setAttribute("aria-selected", String(!status));
    clearInterval(timer);
    timer = null;
    if (status) {
      document.querySelectorAll("#footage video").forEach((video) => video.pause());
      refresh();
      timer = setInterval(refresh, 10000);
    }
    if (location.hash !== (status ? "#status" : "")) {
      history.replaceState(null, "", location.pathname + location.search + (status ? "#status" : ""));
    }
  }

  $("tab-footage").addEventListener("click", () => choose("footage"));
  $("tab-status").addEventListener("click", () => choose("status"));
  window.addEventListener("hashchange", () => choose(location.hash === "#status" ? "status" : "footage"));
  if (location.hash === "#status") choose("status");
})();
