// facelite try-on page: camera frames -> WebSocket -> made-up frames; photos -> POST /api/render.
// Plain browser JavaScript, no library. One frame is in flight at a time: the next frame is
// captured and sent only when the previous one's answer is back, so frames never queue.
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);
  const el = {
    output: $("output"), video: $("camera"), start: $("start"), placeholder: $("live-placeholder"),
    fps: $("fps"), latency: $("latency"), faces: $("faces"), looks: $("looks"), lipColor: $("lip-color"),
    lipReset: $("lip-reset"), intensity: $("intensity"), intensityValue: $("intensity-value"),
    split: $("split"), landmarks: $("show-landmarks"), snapshot: $("snapshot"), json: $("landmarks-json"),
    message: $("message"), drop: $("drop"), photoInput: $("photo-input"), photoResult: $("photo-result"),
    photoFaces: $("photo-faces"), photoDownload: $("photo-download"),
  };
  const JPEG_QUALITY = 0.8;
  const MAX_SEND_WIDTH = 640;         // frames are scaled down to this before they are sent
  const STATS_WINDOW_MS = 2000;       // frames/s and latency are over the last two seconds

  // What the controls say; sent to the server as a settings message and as /api/render options.
  const state = { look: null, lipColor: null, intensity: 1, split: false, landmarks: false, mode: "live" };
  // Live numbers, also read by the end-to-end test: frames answered, frames/s, round trip (ms).
  const stats = { frames: 0, errors: 0, fps: 0, latencyMs: 0, serverMs: 0, samples: [] };
  const live = { ws: null, stream: null, inFlight: false, sentAt: 0, opened: false, last: null };
  const capture = document.createElement("canvas");   // the frame being sent
  const raw = document.createElement("canvas");       // the raw frame of the result on screen
  const outCtx = el.output.getContext("2d");
  let photo = { file: null, url: null };

  function say(text) { el.message.textContent = text || ""; }

  function options() {
    const o = { look: state.look || "none", intensity: state.intensity.toFixed(2) };
    if (state.lipColor) o.lip_color = state.lipColor;
    return o;
  }

  function settingsChanged() {
    const ws = live.ws;
    if (ws && ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify({ type: "settings", ...options() }));
    if (state.mode === "photo" && photo.file) renderPhoto(photo.file);
    redraw();
  }

  // ------------------------------------------------------------------ controls

  function selectLook(name) {
    state.look = name;
    for (const b of el.looks.children) b.setAttribute("aria-checked", String(b.dataset.look === (name || "none")));
    settingsChanged();
  }

  async function loadLooks() {
    const r = await fetch("/api/looks");
    const data = await r.json();
    const items = [...data.looks, { name: "none", description: "no makeup", lips: null }];
    for (const look of items) {
      const b = document.createElement("button");
      b.type = "button";
      b.className = "swatch";
      b.dataset.look = look.name;
      b.setAttribute("role", "radio");
      b.title = look.description;
      const dot = document.createElement("i");
      dot.style.background = look.lips || "transparent";
      b.append(dot, look.name);
      b.addEventListener("click", () => selectLook(look.name === "none" ? null : look.name));
      el.looks.append(b);
    }
    selectLook(data.default);
  }

  el.lipColor.addEventListener("input", () => { state.lipColor = el.lipColor.value; settingsChanged(); });
  el.lipReset.addEventListener("click", () => { state.lipColor = null; settingsChanged(); });
  el.intensity.addEventListener("input", () => {
    state.intensity = Number(el.intensity.value) / 100;
    el.intensityValue.textContent = `${el.intensity.value}%`;
    settingsChanged();
  });
  el.split.addEventListener("change", () => { state.split = el.split.checked; redraw(); });
  el.landmarks.addEventListener("change", () => { state.landmarks = el.landmarks.checked; redraw(); });

  function stamp() {
    const d = new Date(), p = (n) => String(n).padStart(2, "0");
    return `${d.getFullYear()}${p(d.getMonth() + 1)}${p(d.getDate())}-${p(d.getHours())}${p(d.getMinutes())}${p(d.getSeconds())}`;
  }

  function download(blob, name) {
    const a = document.createElement("a");
    a.href = URL.createObjectURL(blob);
    a.download = name;
    a.click();
    setTimeout(() => URL.revokeObjectURL(a.href), 10000);
  }

  el.snapshot.addEventListener("click", () => {
    if (state.mode === "photo") { if (photo.url) el.photoDownload.click(); return; }
    if (!live.last) { say("no frame yet: start the camera first"); return; }
    el.output.toBlob((b) => download(b, `tryon-${stamp()}.png`), "image/png");
  });
  el.json.addEventListener("click", () => {
    const last = live.last && live.last.header;
    if (!last) { say("no frame yet: start the camera first"); return; }
    const data = { width: last.width, height: last.height, coordinates: "frame pixels, 0-based pixel centres",
                   faces: last.faces };
    download(new Blob([JSON.stringify(data, null, 1)], { type: "application/json" }), `landmarks-${stamp()}.json`);
  });

  for (const tab of document.querySelectorAll(".tab")) {
    tab.addEventListener("click", () => setMode(tab.dataset.mode));
  }

  function setMode(mode) {
    state.mode = mode;
    for (const tab of document.querySelectorAll(".tab")) tab.classList.toggle("active", tab.dataset.mode === mode);
    $("live-view").hidden = mode !== "live";
    $("photo-view").hidden = mode !== "photo";
    if (mode !== "live") stopCamera();  // frees this page's session on the server
    say("");
  }

  // ------------------------------------------------------------------ live

  async function startCamera() {
    stopCamera();  // a second start (after the connection closed) replaces the first
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
      say("This browser gives pages the camera only over https or on localhost: serve with --certfile/--keyfile.");
      return;
    }
    try {
      live.stream = await navigator.mediaDevices.getUserMedia({
        video: { width: { ideal: 640 }, height: { ideal: 480 }, facingMode: "user" }, audio: false });
    } catch (err) {
      say(`No camera: ${err.message || err.name}`);
      return;
    }
    el.video.srcObject = live.stream;
    await el.video.play();
    el.placeholder.hidden = true;
    connect();
  }

  function stopCamera() {
    if (live.ws) { live.ws.onclose = null; live.ws.close(); live.ws = null; }
    if (live.stream) { for (const t of live.stream.getTracks()) t.stop(); live.stream = null; }
    live.inFlight = false;
    el.placeholder.hidden = false;
  }

  function connect() {
    const ws = new WebSocket(`${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws`);
    ws.binaryType = "arraybuffer";
    live.ws = ws;
    live.opened = false;
    ws.onopen = () => {
      live.opened = true;
      ws.send(JSON.stringify({ type: "settings", ...options() }));
      sendFrame();
    };
    ws.onmessage = (ev) => {
      if (typeof ev.data === "string") onText(JSON.parse(ev.data));
      else onFrame(ev.data);
    };
    ws.onclose = async (ev) => {
      live.ws = null;
      live.inFlight = false;
      el.placeholder.hidden = false;
      if (live.opened) { say(`Connection closed (${ev.code}${ev.reason ? ": " + ev.reason : ""}).`); return; }
      try {  // the browser hides why a WebSocket was refused: ask the server whether it is full
        const s = await (await fetch("/api/status")).json();
        say(s.sessions >= s.max_sessions
          ? `Server busy: ${s.sessions} of ${s.max_sessions} live sessions in use. Try again later.`
          : "Could not connect to the server.");
      } catch (err) {
        say("Could not reach the server.");
      }
    };
  }

  function sendFrame() {
    const ws = live.ws, v = el.video;
    if (!ws || ws.readyState !== WebSocket.OPEN || live.inFlight) return;
    if (v.readyState < 2 || !v.videoWidth) { setTimeout(sendFrame, 20); return; }
    const scale = Math.min(1, MAX_SEND_WIDTH / v.videoWidth);
    capture.width = Math.round(v.videoWidth * scale);
    capture.height = Math.round(v.videoHeight * scale);
    capture.getContext("2d").drawImage(v, 0, 0, capture.width, capture.height);
    live.inFlight = true;
    capture.toBlob((blob) => {
      if (!blob || ws.readyState !== WebSocket.OPEN) { live.inFlight = false; return; }
      live.sentAt = performance.now();
      ws.send(blob);
    }, "image/jpeg", JPEG_QUALITY);
  }

  function onText(msg) {
    if (msg.type === "error") {
      stats.errors += 1;
      say(`Server: ${msg.message}`);
      if (msg.seq !== undefined) { live.inFlight = false; sendFrame(); }  // that frame's answer
    }
  }

  async function onFrame(buffer) {
    const now = performance.now();
    const n = new DataView(buffer).getUint32(0);
    const header = JSON.parse(new TextDecoder().decode(new Uint8Array(buffer, 4, n)));
    const image = await createImageBitmap(new Blob([new Uint8Array(buffer, 4 + n)], { type: "image/jpeg" }));
    raw.width = capture.width;
    raw.height = capture.height;
    raw.getContext("2d").drawImage(capture, 0, 0);   // the frame this answer is for, kept for the split
    if (live.last && live.last.image) live.last.image.close();
    live.last = { header, image };
    live.inFlight = false;
    sendFrame();                                      // the server works while this one is drawn
    record(now - live.sentAt, header, now);
    redraw();
  }

  function record(latency, header, now) {
    stats.frames += 1;
    stats.samples.push({ t: now, latency, server: header.times.server_ms });
    while (stats.samples.length && now - stats.samples[0].t > STATS_WINDOW_MS) stats.samples.shift();
    const s = stats.samples;
    stats.fps = s.length > 1 ? (s.length - 1) * 1000 / (s[s.length - 1].t - s[0].t) : 0;
    stats.latencyMs = s.reduce((a, x) => a + x.latency, 0) / s.length;
    stats.serverMs = s.reduce((a, x) => a + x.server, 0) / s.length;
    el.fps.textContent = `${stats.fps.toFixed(1)} frames/s`;
    el.latency.textContent = `round trip ${stats.latencyMs.toFixed(0)} ms (server ${stats.serverMs.toFixed(0)} ms)`;
    const k = header.faces.length;
    el.faces.textContent = k ? `${k} face${k > 1 ? "s" : ""}` : "no face";
  }

  function redraw() {
    const last = live.last;
    if (!last) return;
    const { header, image } = last, w = header.width, h = header.height;
    if (el.output.width !== w || el.output.height !== h) { el.output.width = w; el.output.height = h; }
    outCtx.drawImage(image, 0, 0, w, h);
    if (state.split && raw.width === w) {
      // "Before" on the left as the viewer sees it: the right half of a mirrored canvas.
      const mid = Math.floor(w / 2), x = el.output.classList.contains("mirror") ? mid : 0;
      outCtx.drawImage(raw, x, 0, w - mid, h, x, 0, w - mid, h);
      outCtx.fillStyle = "#fff";
      outCtx.fillRect(mid, 0, 1, h);
    }
    if (state.landmarks) {
      outCtx.fillStyle = "#00ff66";
      for (const face of header.faces) {
        for (const [x, y] of face.landmarks) { outCtx.beginPath(); outCtx.arc(x, y, 2, 0, 2 * Math.PI); outCtx.fill(); }
      }
    }
  }

  el.start.addEventListener("click", startCamera);

  // ------------------------------------------------------------------ photo

  async function renderPhoto(file) {
    photo.file = file;
    say("Rendering…");
    const query = new URLSearchParams(options());
    let r;
    try {
      r = await fetch(`/api/render?${query}`, { method: "POST", body: file,
                                                headers: { "Content-Type": file.type || "image/jpeg" } });
    } catch (err) {
      say(`Could not reach the server: ${err.message}`);
      return;
    }
    if (!r.ok) {
      let text = `${r.status}`;
      try { text = (await r.json()).error; } catch (err) { /* not JSON */ }
      say(`Server: ${text}`);
      return;
    }
    const blob = await r.blob();
    if (photo.url) URL.revokeObjectURL(photo.url);
    photo.url = URL.createObjectURL(blob);
    el.photoResult.src = photo.url;
    el.photoResult.hidden = false;
    el.photoResult.dataset.faces = r.headers.get("X-Faces") || "0";
    const k = Number(el.photoResult.dataset.faces);
    el.photoFaces.textContent = k ? `${k} face${k > 1 ? "s" : ""}` : "no face found";
    el.photoDownload.href = photo.url;
    el.photoDownload.download = `${(file.name || "photo").replace(/\.[^.]*$/, "")}.makeup.jpg`;
    el.photoDownload.hidden = false;
    say("");
  }

  el.photoInput.addEventListener("change", () => { if (el.photoInput.files[0]) renderPhoto(el.photoInput.files[0]); });
  el.drop.addEventListener("dragover", (ev) => { ev.preventDefault(); el.drop.classList.add("over"); });
  el.drop.addEventListener("dragleave", () => el.drop.classList.remove("over"));
  el.drop.addEventListener("drop", (ev) => {
    ev.preventDefault();
    el.drop.classList.remove("over");
    const file = ev.dataTransfer.files[0];
    if (file) { setMode("photo"); renderPhoto(file); }
  });

  // For the end-to-end test and the curious: the state, the numbers, and the frame on screen
  // next to the raw frame it came from (PNG data URLs, read in one go so they match).
  window.facelite = {
    state, stats, selectLook,
    frames: () => live.last ? { header: live.last.header, raw: raw.toDataURL("image/png"),
                                output: el.output.toDataURL("image/png") } : null,
  };

  loadLooks().catch((err) => say(`Could not load the looks: ${err.message}`));
})();
