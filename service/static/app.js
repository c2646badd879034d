// The search page: calls GET /api/search (the API any application calls) and shows the hits,
// as thumbnails from /api/images/{id} when the service has an image folder, else as caption
// cards. No build step, no dependencies.
"use strict";

const $ = (sel) => document.querySelector(sel);
const PART_NAMES = { hybrid: ["dense", "sparse"], dense: ["cos", "dot"], sparse: ["cos", "dot"] };
let withImages = false;
let ready = Promise.resolve();  // the health check, which says whether there are image files
const blobs = [];  // object URLs of images fetched with the API key, revoked on the next search

function apiKey() { return sessionStorage.getItem("sparse-mm-key") || ""; }

async function api(path) {
  const headers = apiKey() ? { "X-API-Key": apiKey() } : {};
  const response = await fetch(path, { headers });
  if (response.status === 401) {
    $("#key-row").hidden = false;
    $("#key").focus();
  }
  const body = await response.json().catch(() => ({ detail: `${response.status} ${response.statusText}` }));
  if (!response.ok) throw new Error(body.detail || `HTTP ${response.status}`);
  return body;
}

function say(text, isError = false) {
  const status = $("#status");
  status.textContent = text;
  status.classList.toggle("error", isError);
}

function fmt(value) { return value === null || value === undefined ? "-" : value.toFixed(4); }

function partsText(hit, mode) {
  const [first, second] = PART_NAMES[mode];
  const dense = mode === "sparse" ? null : hit.dense_part;
  const sparse = mode === "dense" ? null : hit.sparse_part;
  return { first, second, dense, sparse };
}

async function setImage(img, id) {
  const path = `/api/images/${encodeURIComponent(id)}`;
  if (!apiKey()) { img.src = path; return; }
  const response = await fetch(path, { headers: { "X-API-Key": apiKey() } });
  if (!response.ok) return;
  const url = URL.createObjectURL(await response.blob());
  blobs.push(url);
  img.src = url;
}

function renderHit(hit, rank, mode) {
  const node = $("#hit-template").content.firstElementChild.cloneNode(true);
  const captions = hit.captions || [];
  const first = captions[0] || "";
  node.dataset.id = hit.id;
  node.querySelector(".rank").textContent = `#${rank}`;
  node.querySelector(".id").textContent = hit.id;
  node.querySelector(".score").textContent = `score ${fmt(hit.score)}`;
  const parts = partsText(hit, mode);
  const partsNode = node.querySelector(".parts");
  partsNode.innerHTML = "";
  const d = document.createElement("span"); d.className = "d"; d.textContent = `${parts.first} ${fmt(parts.dense)}`;
  const s = document.createElement("span"); s.className = "s"; s.textContent = `${parts.second} ${fmt(parts.sparse)}`;
  partsNode.append(d, " + ", s);
  const total = Math.abs(parts.dense || 0) + Math.abs(parts.sparse || 0) || 1;
  node.querySelector(".bar .dense").style.width = `${(100 * Math.abs(parts.dense || 0)) / total}%`;
  node.querySelector(".bar .sparse").style.width = `${(100 * Math.abs(parts.sparse || 0)) / total}%`;
  const img = node.querySelector(".thumb");
  const link = node.querySelector(".thumb-link");
  if (withImages) {
    img.alt = first || `image ${hit.id}`;
    img.dataset.id = hit.id;
    link.href = `/api/images/${encodeURIComponent(hit.id)}`;
    link.setAttribute("aria-label", `open image ${hit.id}`);
    setImage(img, hit.id);
    node.querySelector(".caption").textContent = first;
  } else {
    link.remove();
    const card = node.querySelector(".card");
    card.hidden = false;
    card.setAttribute("aria-label", `captions of ${hit.id}`);
    for (const caption of captions.slice(0, 5)) {
      const p = document.createElement("p"); p.textContent = caption; card.append(p);
    }
  }
  const terms = node.querySelector(".terms");
  node.querySelector(".terms-label").textContent =
    hit.matches.length ? "shared terms (query × image)" : "no shared terms";
  for (const m of hit.matches.slice(0, 8)) {
    const li = document.createElement("li");
    li.textContent = `${m.term} ${m.query_weight.toFixed(2)}×${m.doc_weight.toFixed(2)}`;
    li.title = `contribution ${m.contribution.toFixed(4)}`;
    terms.append(li);
  }
  node.setAttribute("aria-label", `result ${rank}: ${hit.id}, score ${fmt(hit.score)}`);
  return node;
}

async function search(event) {
  if (event) event.preventDefault();
  await ready;
  const q = $("#q").value;
  if (!q.trim()) { say("Type a few words first.", true); return; }
  if (!$("#key-row").hidden && $("#key").value) sessionStorage.setItem("sparse-mm-key", $("#key").value);
  const mode = document.querySelector('input[name="mode"]:checked').value;
  const params = new URLSearchParams({ q, mode, k: "10" });
  history.replaceState(null, "", `?${new URLSearchParams({ q, mode })}`);
  say("Searching…");
  try {
    const body = await api(`/api/search?${params}`);
    while (blobs.length) URL.revokeObjectURL(blobs.pop());
    const list = $("#hits");
    list.replaceChildren(...body.hits.map((hit, i) => renderHit(hit, i + 1, body.mode)));
    const t = body.timings;
    const unknown = body.unknown_words.length ? `; unknown words: ${body.unknown_words.join(", ")}` : "";
    say(`${body.hits.length} hits (${body.mode}) · encode ${t.encode_ms.toFixed(1)} ms · engine ${t.engine_ms} ms · total ${t.total_ms.toFixed(1)} ms${unknown}`);
    list.dataset.query = q;
  } catch (error) {
    say(error.message, true);
  }
}

async function start() {
  $("#search").addEventListener("submit", search);
  for (const radio of document.querySelectorAll('input[name="mode"]')) {
    radio.addEventListener("change", () => { if ($("#q").value.trim()) search(); });
  }
  ready = api("/api/health").then((health) => {
    withImages = Boolean(health.images);
    $("#about").textContent = `${health.documents} images in ${health.index} on ${health.engine} ${health.version}` +
      (withImages ? "" : " · no image files: hits are shown as caption cards");
  }).catch((error) => say(error.message, true));
  const given = new URLSearchParams(location.search);
  if (given.get("mode")) {
    const radio = document.querySelector(`input[name="mode"][value="${CSS.escape(given.get("mode"))}"]`);
    if (radio) radio.checked = true;
  }
  if (given.get("q")) { $("#q").value = given.get("q"); search(); }
}

start();
