// The vidnets page: upload a video to /v1/predict and draw its answer. No libraries, no build step.
"use strict";

const COLOURS = ["#1769aa", "#d95f02", "#1b9e77", "#7570b3", "#e7298a"];
const $ = (id) => document.getElementById(id);

function element(tag, attrs = {}, text = "") {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, value);
  if (text) node.textContent = text;
  return node;
}

function svgElement(tag, attrs = {}, text = "") {
  const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, value);
  if (text) node.textContent = text;
  return node;
}

const percent = (p) => (100 * p).toFixed(1) + "%";

async function showModel() {
  try {
    const response = await fetch("/v1/model");
    const contract = await response.json();
    const metrics = contract.metrics || {};
    let text = `${contract.model.name} · ${contract.class_names.length} classes · recipe ${contract.recipe}`;
    if (typeof metrics.video_top1 === "number") {
      text += ` · recorded test top-1 ${percent(metrics.video_top1)} on ${metrics.videos} videos`;
    }
    $("model").textContent = text;
  } catch (error) {
    $("model").textContent = "the model description could not be loaded";
  }
}

function setBusy(text, value) {
  $("busy").hidden = text === null;
  $("status").textContent = text || "";
  const bar = $("progress");
  if (value === null) bar.removeAttribute("value"); else bar.value = value;
}

function showError(text) {
  $("error").textContent = text;
  $("error").hidden = false;
}

function drawTopk(topk) {
  const list = $("topk");
  list.replaceChildren();
  for (const { class: name, probability } of topk) {
    const row = element("li");
    row.append(element("span", { class: "name", title: name }, name));
    const track = element("span", { class: "track" });
    const bar = element("span", { class: "bar" });
    bar.style.display = "block";
    bar.style.width = (100 * probability).toFixed(2) + "%";
    track.append(bar);
    row.append(track, element("span", { class: "pct" }, percent(probability)));
    list.append(row);
  }
}

function drawTimeline(timeline) {
  const box = $("timeline");
  box.replaceChildren();
  if (!timeline || timeline.windows.length < 2) {
    box.append(element("p", { class: "note" }, "The video is shorter than two windows: no timeline."));
    return;
  }
  const width = 860, height = 240, left = 52, right = 24, top = 10, bottom = 30;
  const centres = timeline.windows.map((w) => (w.start + w.end) / 2);
  const t0 = centres[0], t1 = centres[centres.length - 1];
  const x = (t) => left + ((t - t0) / (t1 - t0)) * (width - left - right);
  const y = (p) => top + (1 - p) * (height - top - bottom);
  const svg = svgElement("svg", { viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": "timeline" });
  for (const p of [0, 0.5, 1]) {
    svg.append(svgElement("line", { x1: left, x2: width - right, y1: y(p), y2: y(p), stroke: "#ddd" }));
    svg.append(svgElement("text", { x: left - 6, y: y(p) + 4, "text-anchor": "end", "font-size": 11 }, percent(p)));
  }
  [t0, (t0 + t1) / 2, t1].forEach((t, i) => {
    svg.append(svgElement("text", { x: x(t), y: height - 8, "text-anchor": ["start", "middle", "end"][i],
      "font-size": 11 }, t.toFixed(1) + " s"));
  });
  const legend = element("div", { class: "legend" });
  timeline.series.forEach((series, i) => {
    const points = series.probabilities.map((p, j) => `${x(centres[j]).toFixed(1)},${y(p).toFixed(1)}`);
    svg.append(svgElement("polyline", { points: points.join(" "), fill: "none", stroke: COLOURS[i % 5],
      "stroke-width": 2, "data-class": series.class }));
    const item = element("span", { class: "series" });
    const swatch = element("span", { class: "swatch" });
    swatch.style.background = COLOURS[i % 5];
    item.append(swatch, document.createTextNode(series.class));
    legend.append(item);
  });
  box.append(svg, legend);
}

function drawFrames(frames) {
  const strip = $("frames");
  strip.replaceChildren();
  for (const frame of frames || []) {
    const figure = element("figure");
    figure.append(element("img", { src: frame.jpeg, alt: `frame at ${frame.time} s` }),
      element("figcaption", {}, frame.time.toFixed(1) + " s"));
    strip.append(figure);
  }
}

function showResult(body) {
  $("video-name").textContent = body.video.name;
  $("video-facts").textContent = `${body.video.frames} frames · ${body.video.duration.toFixed(1)} s · ` +
    `scored in ${body.seconds.toFixed(2)} s by ${body.model.name} (${body.model.source})`;
  drawFrames(body.frames);
  drawTopk(body.topk);
  drawTimeline(body.timeline);
  $("accuracy").textContent = body.model.recorded_accuracy;
  $("result").hidden = false;
}

function upload(file) {
  $("error").hidden = true;
  $("result").hidden = true;
  const form = new FormData();
  form.append("file", file);
  form.append("topk", "5");
  form.append("timeline", "true");
  form.append("frames", "8");
  const request = new XMLHttpRequest();
  request.open("POST", "/v1/predict");
  request.upload.onprogress = (event) => {
    if (event.lengthComputable) setBusy(`Uploading ${file.name}…`, (100 * event.loaded) / event.total);
  };
  request.upload.onload = () => setBusy(`Scoring ${file.name}…`, null);
  request.onload = () => {
    setBusy(null, null);
    let body = null;
    try { body = JSON.parse(request.responseText); } catch (error) { body = null; }
    if (request.status === 200 && body) { showResult(body); return; }
    const detail = body && (typeof body.detail === "string" ? body.detail : JSON.stringify(body.detail));
    const retry = request.getResponseHeader("Retry-After");
    showError(`Error ${request.status}: ${detail || request.statusText}` + (retry ? ` (retry in ${retry} s)` : ""));
  };
  request.onerror = () => { setBusy(null, null); showError("The server could not be reached."); };
  setBusy(`Uploading ${file.name}…`, 0);
  request.send(form);
}

const drop = $("drop");
drop.addEventListener("dragover", (event) => { event.preventDefault(); drop.classList.add("over"); });
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", (event) => {
  event.preventDefault();
  drop.classList.remove("over");
  if (event.dataTransfer.files.length) upload(event.dataTransfer.files[0]);
});
$("file").addEventListener("change", (event) => {
  if (event.target.files.length) upload(event.target.files[0]);
  event.target.value = "";
});
showModel();
