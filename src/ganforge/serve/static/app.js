// The ganforge web page: samples, labels, truncation, enlarge, interpolation, download.
// Plain JavaScript over the JSON API (/api/info, /api/generate, /api/interpolate).
// What a sample is comes from the API: each response's media_type (image/png, audio/wav, ...)
// picks the element that presents it (<img>, enlarged on click; <audio controls>; one <table> of CSV rows).
"use strict";

const $ = (id) => document.getElementById(id);
const TRUNCATION_OFF = 2.1; // the slider's last stop means "no truncation"
const state = { info: null, picked: { a: null, b: null }, shown: null };

/** A readable message from a FastAPI error body (a string, or a list of field errors). */
function errorMessage(detail, status) {
  if (typeof detail === "string") return detail;
  if (Array.isArray(detail)) {
    return detail.map((e) => `${(e.loc || []).filter((p) => p !== "body").join(".")}: ${e.msg}`).join("; ");
  }
  return `request failed (HTTP ${status})`;
}

/** POST JSON to the API; returns parsed JSON, or a Blob for file responses (PNG, WAV). Throws with the server's message. */
async function post(path, body) {
  const response = await fetch(path, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body),
  });
  if (!response.ok) {
    let detail = null;
    try { detail = (await response.json()).detail; } catch (_) { /* not JSON */ }
    throw new Error(errorMessage(detail, response.status));
  }
  const type = response.headers.get("content-type") || "";
  return type.includes("json") ? response.json() : response.blob();
}

function showError(err) {
  const box = $("error");
  box.textContent = err ? `error: ${err.message || err}` : "";
  box.hidden = !err;
}

/** Run an action with the buttons disabled, showing any error. */
async function busy(action) {
  const buttons = ["generate", "interpolate", "download"].map($);
  buttons.forEach((b) => { b.disabled = true; });
  document.body.dataset.busy = "1";
  try {
    showError(null);
    await action();
  } catch (err) {
    showError(err);
  } finally {
    buttons.forEach((b) => { b.disabled = b.id === "download" && !$("grid").children.length; });
    delete document.body.dataset.busy;
  }
}

function intValue(id) {
  const value = $(id).value.trim();
  return /^-?\d+$/.test(value) ? Number(value) : value; // non-integers go to the server, which explains
}

function truncation() {
  const value = Number($("truncation").value);
  return value >= TRUNCATION_OFF ? null : value;
}

function selectedLabel() {
  const value = $("label").value;
  return value === "" ? null : Number(value);
}

function dataUrl(base64, mediaType) {
  return `data:${mediaType};base64,${base64}`;
}

/** MIME types, then their major parts -> the element that presents such a file (as ganforge.modality.Media.element). */
const ELEMENTS = { "text/csv": "table", image: "img", audio: "audio", video: "video", text: "blockquote" };

/** The element that presents a file of this MIME type: table (CSV rows), img, audio, video or blockquote (text). */
function elementFor(mediaType) {
  const type = String(mediaType || "");
  return ELEMENTS[type] || ELEMENTS[type.split("/")[0]] || "img";
}

/** The UTF-8 text of a base64 file. */
function textOf(base64) {
  return new TextDecoder().decode(Uint8Array.from(atob(base64), (c) => c.charCodeAt(0)));
}

/** The rows of a CSV text, each a list of fields (RFC 4180: a quoted field may hold commas, line breaks and "" for "). */
function csvRows(text) {
  const rows = [];
  let row = [];
  let field = "";
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') { field += '"'; i++; } else if (c === '"') quoted = false; else field += c;
    } else if (c === '"') {
      quoted = true;
    } else if (c === ",") {
      row.push(field);
      field = "";
    } else if (c === "\n" || c === "\r") {
      if (c === "\r" && text[i + 1] === "\n") i++;
      row.push(field);
      rows.push(row);
      row = [];
      field = "";
    } else {
      field += c;
    }
  }
  if (field !== "" || row.length) rows.push([...row, field]);
  return rows;
}

/** One table of samples that are CSV files (a header, then rows): the header once, then each sample's rows,
 *  led by its caption. */
function sampleTable(files, captions, extra) {
  const parsed = files.map((b64) => csvRows(textOf(b64)));
  const table = document.createElement("table");
  table.className = "rows";
  const head = table.createTHead().insertRow();
  for (const name of ["sample", ...(parsed.length ? parsed[0][0] : [])]) {
    const th = document.createElement("th");
    th.scope = "col";
    th.textContent = name;
    head.append(th);
  }
  const body = table.createTBody();
  parsed.forEach((rows, i) => {
    for (const cells of rows.slice(1)) {
      const row = body.insertRow();
      Object.assign(row.dataset, extra(i));
      const th = document.createElement("th");
      th.scope = "row";
      th.textContent = captions[i];
      row.append(th);
      for (const cell of cells) row.insertCell().textContent = cell;
    }
  });
  return table;
}

/** The file suffix of a MIME type (image/png -> .png, audio/wav -> .wav). */
function suffixFor(mediaType) {
  return `.${String(mediaType || "image/png").split("/")[1].replace(/^x-/, "")}`;
}

function describe(seed, label) {
  const names = state.info ? state.info.class_names : [];
  return label === null || label === undefined ? `seed ${seed}` : `seed ${seed}, label ${names[label] ?? label}`;
}

/** Fill a container with one element per file: <img> (click to enlarge), a captioned <audio>/<video> player
 *  or sentence, or (CSV rows) one <table> of them all. */
function showSamples(container, files, mediaType, captions, extra = () => ({})) {
  const tag = elementFor(mediaType);
  container.dataset.media = tag;
  if (tag === "table") {
    container.replaceChildren(sampleTable(files, captions, extra));
    return;
  }
  container.replaceChildren(...files.map((b64, i) => {
    if (tag === "img") {
      const img = document.createElement("img");
      img.src = dataUrl(b64, mediaType);
      img.alt = img.title = captions[i];
      Object.assign(img.dataset, extra(i));
      img.addEventListener("click", () => openLightbox(img));
      return img;
    }
    const figure = document.createElement("figure");
    const caption = document.createElement("figcaption");
    caption.textContent = captions[i];
    if (tag === "blockquote") { // a sentence: its text, captioned
      figure.className = "sentence";
      const quote = document.createElement("blockquote");
      quote.textContent = textOf(b64).trim();
      quote.title = captions[i];
      Object.assign(quote.dataset, extra(i));
      figure.append(quote, caption);
      return figure;
    }
    figure.className = "clip";
    const player = document.createElement(tag);
    player.controls = true;
    player.preload = "auto";
    player.src = dataUrl(b64, mediaType);
    player.title = captions[i];
    Object.assign(player.dataset, extra(i));
    figure.append(player, caption);
    return figure;
  }));
}

function samplesRequest(format) {
  return { n: intValue("n"), seed: intValue("seed"), label: selectedLabel(), truncation: truncation(), format };
}

async function generate() {
  const result = await post("/api/generate", samplesRequest("images"));
  const labels = result.labels || result.seeds.map(() => null);
  const grid = $("grid");
  showSamples(grid, result.images, result.media_type, result.seeds.map((s, i) => describe(s, labels[i])),
    (i) => ({ seed: result.seeds[i], label: labels[i] ?? "" }));
  if (elementFor(result.media_type) === "img") {
    // the same layout as the grid PNG: one row per class cycle, else a square
    const cycling = result.labels && selectedLabel() === null;
    const columns = cycling ? state.info.num_classes : Math.ceil(Math.sqrt(result.images.length));
    grid.style.gridTemplateColumns = `repeat(${Math.min(columns, result.images.length)}, 84px)`;
  } else {
    grid.style.gridTemplateColumns = ""; // players flow in the stylesheet's columns
  }
  state.picked = { a: null, b: null };
}

async function interpolate() {
  const conditional = state.info && state.info.conditional;
  let label = selectedLabel();
  if (label === null && conditional) label = state.picked.a ?? state.picked.b ?? 0; // a label from a picked sample
  const body = {
    seed_a: intValue("seed-a"), seed_b: intValue("seed-b"), steps: intValue("steps"), mode: $("mode").value,
    label: conditional ? label : null, truncation: truncation(), format: "images",
  };
  const result = await post("/api/interpolate", body);
  const last = result.images.length - 1;
  showSamples($("frames"), result.images, result.media_type,
    result.images.map((_, i) => `${body.mode} ${body.seed_a} → ${body.seed_b}, frame ${i}/${last}`));
}

function saveBlob(blob, filename) {
  const link = document.createElement("a");
  link.href = URL.createObjectURL(blob);
  link.download = filename;
  document.body.appendChild(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href), 10000);
}

async function download() {
  const body = samplesRequest("grid");
  const batchType = state.info ? state.info.batch_media_type : "image/png";
  if (elementFor(batchType) === "img") {
    const resolution = state.info ? state.info.resolution : 32;
    const maxScale = state.info ? state.info.limits.max_scale : 1;
    body.scale = Math.max(1, Math.min(maxScale, Math.ceil(64 / resolution))); // cells of at least 64 px
  }
  saveBlob(await post("/api/generate", body), `ganforge-seed${body.seed}-n${body.n}${suffixFor(batchType)}`);
}

function openLightbox(img) {
  state.shown = img;
  $("lightbox-img").src = img.src;
  $("lightbox-caption").textContent = img.title;
  $("lightbox-download").href = img.src;
  $("lightbox-download").download = `${img.title.replace(/[^\w.-]+/g, "-")}.png`;
  const isSample = img.parentElement === $("grid");
  $("pick-a").hidden = $("pick-b").hidden = !isSample;
  $("lightbox").hidden = false;
}

function closeLightbox() {
  $("lightbox").hidden = true;
  state.shown = null;
}

/** Use the enlarged sample as end A or B of the interpolation. */
function pick(end) {
  const img = state.shown;
  if (!img) return;
  $(end === "a" ? "seed-a" : "seed-b").value = img.dataset.seed;
  state.picked[end] = img.dataset.label === "" ? null : Number(img.dataset.label);
  document.querySelectorAll(`#grid img[data-end="${end}"]`).forEach((other) => {
    delete other.dataset.end;
    other.classList.remove("picked");
  });
  img.dataset.end = end;
  img.classList.add("picked");
  closeLightbox();
}

async function loadInfo() {
  const response = await fetch("/api/info");
  const info = await response.json();
  state.info = info;
  const shape = info.output_shape.join("×");
  const fields = Object.entries(info.output_fields || {}).map(([key, value]) => `${key.replace(/_/g, " ")} ${value}`);
  $("info").textContent = [
    `${info.model}${info.run ? ` (run ${info.run}${info.step != null ? `, step ${info.step}` : ""})` : ""}`,
    info.data && `data: ${info.data}`, `output ${shape}`, ...fields, `latent ${info.latent_dim}`,
    info.conditional ? `${info.num_classes} classes` : "unconditional",
  ].filter(Boolean).join(" · ");
  const tag = elementFor(info.media_type);
  if (tag !== "img") { // players, text and rows: nothing to enlarge; one file of all the samples to download
    $("hint").textContent = tag === "table"
      ? "Each row's seed is in its first column, for the interpolation below."
      : "Play a sample; its seed is in its caption, for the interpolation below.";
    $("download").textContent = "Download all (one file)";
  }
  $("n").max = info.limits.max_n;
  $("steps").max = info.limits.max_steps;
  $("label-field").hidden = !info.conditional;
  $("label").append(...info.class_names.map((name, i) => new Option(name === String(i) ? name : `${i}: ${name}`, i)));
}

function wire() {
  $("generate").addEventListener("click", () => busy(generate));
  $("interpolate").addEventListener("click", () => busy(interpolate));
  $("download").addEventListener("click", () => busy(download));
  $("random-seed").addEventListener("click", () => {
    $("seed").value = Math.floor(Math.random() * 100000);
    busy(generate);
  });
  $("truncation").addEventListener("input", () => {
    const value = truncation();
    $("truncation-value").textContent = value === null ? "off" : value.toFixed(2);
  });
  for (const id of ["seed", "n"]) {
    $(id).addEventListener("keydown", (event) => { if (event.key === "Enter") busy(generate); });
  }
  $("pick-a").addEventListener("click", () => pick("a"));
  $("pick-b").addEventListener("click", () => pick("b"));
  $("lightbox-close").addEventListener("click", closeLightbox);
  $("lightbox").addEventListener("click", (event) => { if (event.target === $("lightbox")) closeLightbox(); });
  document.addEventListener("keydown", (event) => { if (event.key === "Escape") closeLightbox(); });
}

wire();
busy(async () => {
  await loadInfo();
  await generate();
});
