// The card editor in a real browser against a real kiln-server's HTTP door:
//   node client/web/test/editor.test.mjs http://127.0.0.1:8080 [SCREENSHOT_DIR]
// (tests/e2e/web_editor_test.py starts the server and runs it in ./scripts/test.) Drives
// headless Chromium (CHROMIUM, default /usr/bin/chromium) through playwright-core at 1280x800:
// palette -> DepthwiseConv2D model from cards with live shapes and parameter counts -> a server
// error on its field -> initializer and regularizer cards wired into its sockets -> model,
// compile -> an uploaded dataset -> fit one epoch with a growing chart and the final accuracy
// -> a second fit cancelled -> evaluate -> predict a drawing -> save, export and import -> an
// imported model drawn as cards -> a reload that keeps the canvas. Exits non-zero on the first
// failed check; screenshots go to SCREENSHOT_DIR (default client/web/test-results/).
import { mkdirSync, readFileSync } from "node:fs";
import { chromium } from "playwright-core";

const base = process.argv[2] ?? "http://127.0.0.1:8080";
const out = (process.argv[3] ?? new URL("../test-results/", import.meta.url).pathname).replace(/\/?$/, "/");
mkdirSync(out, { recursive: true });

// 256 28x28 images whose label (0-3) is the bright quadrant: learnable in an epoch or two.
function quadrantData(n) {
  const x = new Float32Array(n * 784);
  const y = new Int32Array(n);
  let seed = 1;
  const random = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648);
  for (let i = 0; i < n; i++) {
    y[i] = i % 4;
    const [r0, c0] = [(y[i] >> 1) * 14, (y[i] & 1) * 14];
    for (let r = 0; r < 28; r++) {
      for (let c = 0; c < 28; c++) {
        const inside = r >= r0 && r < r0 + 14 && c >= c0 && c < c0 + 14;
        x[i * 784 + r * 28 + c] = (inside ? 0.7 : 0) + 0.3 * random();
      }
    }
  }
  return { x, y };
}

// A .npy file (format 1.0) of a little-endian typed array.
function npy(descr, shape, data) {
  let header = `{'descr': '${descr}', 'fortran_order': False, 'shape': (${shape.join(", ")}${shape.length === 1 ? "," : ""}), }`;
  header += " ".repeat(63 - ((10 + header.length) % 64)) + "\n";
  const head = Buffer.alloc(10);
  head.write("\x93NUMPY", 0, "latin1");
  head[6] = 1;
  head.writeUInt16LE(header.length, 8);
  return Buffer.concat([head, Buffer.from(header, "latin1"), Buffer.from(data.buffer)]);
}

function check(ok, what) {
  if (!ok) throw new Error(`FAILED: ${what}`);
  console.log(`ok - ${what}`);
}

const browser = await chromium.launch({ executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium", args: ["--no-sandbox"] });
const page = await browser.newPage({ viewport: { width: 1280, height: 800 }, acceptDownloads: true });
const pageErrors = [];
page.on("pageerror", (e) => pageErrors.push(e.message));
// Every request of a job's event stream: the server ends each after --http_max_stream_time,
// and EventSource comes back for the rest.
const eventStreams = [];
page.on("request", (r) => { if (/\/v1\/jobs\/[^/]+\/events/.test(r.url())) eventStreams.push(new URL(r.url())); });
page.setDefaultTimeout(15_000);

try {
  await page.goto(base);
  await page.getByTestId("status-bar").filter({ hasText: "ready" }).waitFor();
  check(true, "session created");
  check((await page.getByTestId("palette").getByRole("button").count()) > 10, "palette lists the catalogue's classes");

  // Input -> Flatten -> Dense(10, softmax), each added while the previous card is selected.
  await page.getByTestId("palette-item-InputLayer").click();
  const input = page.getByTestId("card-InputLayer");
  await input.getByTestId("field-shape").fill("28, 28, 1");
  await input.getByTestId("output-shape").filter({ hasText: "(None, 28, 28, 1)" }).waitFor();
  check(true, "AddInput shows the input's shape");

  await page.getByTestId("palette-item-DepthwiseConv2D").click();
  const conv = page.getByTestId("card-DepthwiseConv2D");
  check((await conv.getByTestId("field-padding").inputValue()) === "valid", "fields are pre-filled with Keras defaults");
  check((await conv.getByTestId("field-depth_multiplier").inputValue()) === "1", "depth_multiplier defaults to Keras's 1");
  await conv.getByTestId("field-kernel_size").fill("3");
  await conv.getByTestId("field-depth_multiplier").fill("4");
  await conv.getByTestId("param-count").filter({ hasText: "40" }).waitFor();
  check((await conv.getByTestId("output-shape").textContent()) === "(None, 26, 26, 4)", "AddLayer shows the DepthwiseConv2D's output shape and parameter count");

  await conv.getByTestId("field-strides").fill("0");
  const strideError = conv.getByTestId("field-error-strides");
  await strideError.waitFor();
  check(/strides/.test(await strideError.textContent()), "a BadRequest lands on its field");
  await conv.getByTestId("field-strides").fill("1");
  await strideError.waitFor({ state: "detached" });
  check(true, "fixing the field clears the error");

  await page.getByTestId("palette-item-Flatten").click();
  await page.getByTestId("card-Flatten").getByTestId("output-shape").filter({ hasText: "(None, 2704)" }).waitFor();
  await page.getByTestId("palette-item-Dense").click();
  const dense = page.getByTestId("card-Dense");
  await dense.getByTestId("field-units").fill("10");
  await dense.getByTestId("field-activation").selectOption("softmax");
  await dense.getByTestId("param-count").filter({ hasText: "27,050" }).waitFor();
  check(true, "a chain of cards is built live");

  // Changing an upstream field re-creates the layers downstream.
  await conv.getByTestId("field-depth_multiplier").fill("2");
  await dense.getByTestId("param-count").filter({ hasText: "13,530" }).waitFor();
  check(true, "a changed field re-creates the layer and everything downstream");

  // Object cards: an initializer from the palette goes into the selected card's first free
  // socket of its kind; a regularizer is unwired, then wired back by dragging its wire.
  await page.locator(".react-flow__controls-fitview").click();
  await conv.locator("header .card-class").click();
  await page.getByTestId("palette-item-HeNormal").click();
  const he = page.getByTestId("card-HeNormal");
  await conv.getByTestId("socket-depthwise_initializer").getByTestId("socket-link").filter({ hasText: "he_normal" }).waitFor();
  check(true, "an initializer card is wired into the selected card's depthwise_initializer socket");
  await he.getByTestId("field-seed").fill("7");
  await conv.locator("header .card-class").click();
  await page.getByTestId("palette-item-L2").click();
  const l2Socket = conv.getByTestId("socket-depthwise_regularizer");
  await l2Socket.getByTestId("socket-link").filter({ hasText: "l2" }).waitFor();
  await l2Socket.getByTestId("unwire").click();
  await l2Socket.waitFor({ state: "detached" });
  check((await conv.getByTestId("field-depthwise_regularizer").inputValue()) === "l2", "an unwired socket keeps the object's value");
  await page.locator(".react-flow__controls-fitview").click();
  const wireEnd = page.locator('[data-card-id="l2"] .react-flow__handle');
  const from = await wireEnd.boundingBox();
  await page.mouse.move(from.x + from.width / 2, from.y + from.height / 2);
  await page.mouse.down();
  await page.mouse.move(from.x + 40, from.y + 10, { steps: 4 });
  const socketEnd = await l2Socket.locator(".react-flow__handle").boundingBox(); // shown while dragging
  await page.mouse.move(socketEnd.x + socketEnd.width / 2, socketEnd.y + socketEnd.height / 2, { steps: 8 });
  await page.mouse.up();
  await l2Socket.getByTestId("socket-link").filter({ hasText: "l2" }).waitFor();
  check(true, "dragging an object card's wire onto a socket wires it");
  await dense.getByTestId("param-count").filter({ hasText: "13,530" }).waitFor();

  await page.getByTestId("create-model-button").click();
  await page.getByTestId("model-params").filter({ hasText: "13,550" }).waitFor();
  await page.screenshot({ path: `${out}cards.png` });
  check(true, "CreateModel");

  await page.getByTestId("loss-select").selectOption("sparse_categorical_crossentropy");
  await page.getByTestId("metric-accuracy").check();
  await page.getByTestId("compile-button").click();
  await page.getByTestId("model-compiled").waitFor();
  check(true, "Compile");

  const [saved] = await Promise.all([page.waitForEvent("download"), page.getByTestId("save-definition").click()]);
  const def = JSON.parse(readFileSync(await saved.path(), "utf8"));
  check(def.nodes.length === 4 && def.nodes[1].layer.depthwise_conv2d.depth_multiplier === 2 && def.compile.loss.name === "sparse_categorical_crossentropy", "Save JSON writes a DefineModel definition");
  const sockets = def.nodes[1].layer.depthwise_conv2d;
  check(sockets.depthwise_initializer?.he_normal?.seed === 7 && sockets.depthwise_regularizer?.name === "l2", "wired object cards are saved in their sockets");
  await page.getByTestId("define-model-button").click();
  await page.getByTestId("status-bar").filter({ hasText: "Defined model" }).waitFor();
  check(true, "DefineModel accepts the saved definition");

  const [exported] = await Promise.all([page.waitForEvent("download"), page.getByTestId("export-keras").click()]);
  const keras = JSON.parse(readFileSync(await exported.path(), "utf8"));
  check(keras.class_name !== undefined, `ExportModel streams Keras JSON (${exported.suggestedFilename()})`);
  check(/"class_name":\s*"HeNormal"/.test(JSON.stringify(keras)), "the exported Keras JSON carries the wired HeNormal initializer");

  // A second call of the Dense layer (shared weights), wired from the keyboard's socket select.
  await dense.getByTestId("reuse-layer").click();
  const call = page.locator('[data-kind="call"]');
  await call.getByTestId("connect-input").selectOption("flatten");
  await call.getByTestId("output-shape").filter({ hasText: "(None, 10)" }).waitFor();
  check((await call.getByTestId("param-count").textContent()) === "13,530", "CallLayer reuses the layer instance");
  await call.getByTestId("remove-card").click();

  // Uploads: a small .npy pair written here, sent in chunks.
  await page.getByText("Upload a dataset").click();
  await page.getByTestId("upload-name").fill("quadrants");
  const { x, y } = quadrantData(256);
  await page.getByTestId("upload-x").setInputFiles({ name: "x.npy", mimeType: "application/octet-stream", buffer: npy("<f4", [256, 28, 28, 1], x) });
  await page.getByTestId("upload-y").setInputFiles({ name: "y.npy", mimeType: "application/octet-stream", buffer: npy("<i4", [256], y) });
  await page.getByTestId("upload-button").click();
  await page.getByTestId("dataset-list").filter({ hasText: "quadrants: 256 samples" }).waitFor();
  check(true, "BeginUpload / AppendUploadChunk / FinishUpload");

  // One epoch on the uploaded data: live progress, both charts, the final accuracy.
  await page.getByTestId("fit-dataset").selectOption("quadrants");
  await page.getByTestId("fit-epochs").fill("1");
  await page.getByTestId("fit-batch-size").fill("16");
  await page.getByTestId("fit-validation-split").fill("0.25");
  await page.getByTestId("fit-button").click();
  await page.getByTestId("progress-bar").waitFor();
  await page.getByTestId("final-accuracy").waitFor({ timeout: 120_000 });
  const acc = Number(await page.getByTestId("final-accuracy").textContent());
  check(acc >= 0 && acc <= 1, `one epoch ends with its accuracy shown (${acc})`);
  const batchPoints = Number(await page.getByTestId("chart-batch").getAttribute("data-points"));
  // Batch events come at most every 100 ms, so a quick epoch reports few of its 12 batches.
  check(batchPoints >= 1, `the batch chart has the reported batches (${batchPoints})`);
  check(Number(await page.getByTestId("chart-epoch").getAttribute("data-points")) === 1, "the epoch chart has the epoch");
  await page.screenshot({ path: `${out}one-epoch.png` });

  // A second, longer fit: the chart grows while it runs, and Cancel stops it.
  await page.getByTestId("fit-epochs").fill("500");
  await page.getByTestId("fit-batch-size").fill("2");  // slow enough to watch
  await page.getByTestId("fit-button").click();
  await page.getByTestId("progress-bar").and(page.locator('[data-state="RUNNING"]')).waitFor();
  const points = async () => Number(await page.getByTestId("chart-batch").getAttribute("data-points"));
  const before = await points();
  await page.waitForFunction((n) => Number(document.querySelector('[data-testid="chart-batch"]')?.getAttribute("data-points")) > n + 2, before);
  check((await points()) > before, "the batch chart grows while the fit runs");
  // The picture README shows: every card in view, the charts of a running fit beside them.
  await page.waitForFunction(() => document.querySelectorAll(".metrics-list dd").length > 0 &&
    Number(document.querySelector('[data-testid="chart-epoch"]')?.getAttribute("data-points")) >= 3);
  await page.locator(".react-flow__controls-fitview").click();
  await page.getByTestId("chart-batch").scrollIntoViewIfNeeded();
  await page.screenshot({ path: `${out}editor.png` });
  // Past a --http_max_stream_time, the server has ended the stream once at least.
  const streamsOf = (u) => eventStreams.filter((v) => v.pathname === u.pathname).length;
  for (let waited = 0; streamsOf(eventStreams.at(-1)) < 2 && waited < 20_000; waited += 100) {
    await page.waitForTimeout(100);
  }
  await page.getByTestId("cancel-button").click();
  await page.getByTestId("progress-bar").and(page.locator('[data-state="CANCELLED"]')).waitFor({ timeout: 60_000 });
  check(true, "CancelJob stops a running fit");
  // Its stream was dropped and resumed on the way, and the chart lost no epoch: one point per
  // epoch in the job's history.
  const stream = eventStreams.at(-1);
  const jobId = stream.pathname.split("/")[3];
  const resumed = streamsOf(stream);
  check(resumed > 1, `the event stream was resumed ${resumed - 1} times`);
  const job = await (await fetch(`${base}/kiln.v1.JobService/GetJob`, {
    method: "POST", headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ sessionId: stream.searchParams.get("session_id"), jobId }),
  })).json();
  const epochPoints = Number(await page.getByTestId("chart-epoch").getAttribute("data-points"));
  check(epochPoints === job.history.length, `the epoch chart has every finished epoch (${epochPoints} of ${job.history.length})`);

  await page.getByTestId("evaluate-dataset").selectOption("quadrants");
  await page.getByTestId("evaluate-button").click();
  await page.getByTestId("evaluate-accuracy").waitFor({ timeout: 60_000 });
  check(true, `evaluate: accuracy ${await page.getByTestId("evaluate-accuracy").textContent()}`);

  // Predict: a bright square drawn in the top-left quadrant.
  const box = await page.getByTestId("predict-canvas").boundingBox();
  await page.mouse.move(box.x + 20, box.y + 20);
  await page.mouse.down();
  for (const [dx, dy] of [[80, 20], [80, 80], [20, 80], [20, 20], [80, 80]]) {
    await page.mouse.move(box.x + dx, box.y + dy, { steps: 5 });
  }
  await page.mouse.up();
  await page.getByTestId("predict-button").click();
  await page.getByTestId("probability-9").waitFor();
  const probabilities = await Promise.all(
    Array.from({ length: 10 }, async (_, k) => Number((await page.getByTestId(`probability-${k}`).getAttribute("data-value")) ?? NaN)));
  check(probabilities.every((p) => p >= 0 && p <= 1) && Math.abs(probabilities.reduce((a, b) => a + b, 0) - 1) < 1e-3,
    `predict a drawing: ten probabilities that sum to 1 (class ${await page.getByTestId("predicted-class").textContent()})`);
  // The same image again, as an uploaded PNG.
  const png = await page.getByTestId("predict-canvas").screenshot();
  await page.getByTestId("predict-image").setInputFiles({ name: "drawing.png", mimeType: "image/png", buffer: png });
  await page.getByTestId("predict-button").click();
  await page.getByTestId("probability-9").waitFor();
  check(true, `predict an uploaded image: class ${await page.getByTestId("predicted-class").textContent()}`);
  // Load a saved definition (the repository's fixture): every node becomes a live card.
  const fixture = new URL("../../../tests/fixtures/mobilenet_fashion_mnist.json", import.meta.url).pathname;
  await page.getByTestId("load-definition-file").setInputFiles(fixture);
  await page.locator('[data-card-id="classes"]').getByTestId("param-count").filter({ hasText: "1,290" }).waitFor({ timeout: 60_000 });
  check((await page.locator(".react-flow__node").count()) === 25, "Load JSON makes a card per node and builds them live");
  await page.getByTestId("define-model-button").click();
  await page.getByTestId("status-bar").filter({ hasText: "Defined model mobilenet" }).waitFor();
  check(true, "DefineModel of the loaded definition");

  await page.getByTestId("model-select").selectOption("mobilenet");
  await page.locator("#export-format").selectOption({ label: ".keras" });
  const [archive] = await Promise.all([page.waitForEvent("download"), page.getByTestId("export-keras").click()]);
  check(archive.suggestedFilename().endsWith(".keras"), `ExportModel streams a .keras archive (${archive.suggestedFilename()})`);
  await page.getByTestId("import-keras-file").setInputFiles(await archive.path().then((p) => ({ name: "mobilenet.keras", mimeType: "application/octet-stream", buffer: readFileSync(p) })));
  await page.getByTestId("status-bar").filter({ hasText: "Imported mobilenet.keras as mobilenet" }).waitFor();
  check(true, "ImportModel of the .keras archive");

  const shared = new URL("../../../tests/fixtures/keras/keras3_shared_two_inputs.json", import.meta.url).pathname;
  await page.getByTestId("import-keras-file").setInputFiles(shared);
  await page.getByTestId("status-bar").filter({ hasText: "239 parameters" }).waitFor();
  check(true, "ImportModel of Keras 3 JSON");
  // The imported model drawn as cards: two inputs, the shared DepthwiseConv2D's second call as
  // a call card, two heads; CreateModel over the drawn cards gives Keras's parameter count again.
  await page.getByTestId("draw-model").click();
  await page.locator('[data-card-id="score_head"]').getByTestId("output-shape").waitFor({ timeout: 60_000 });
  check((await page.locator(".react-flow__node").count()) === 9 && (await page.locator('[data-kind="call"]').count()) === 1,
    "an imported Keras model is drawn as 9 cards with its shared layer's call");
  await page.getByTestId("create-model-button").click();
  await page.getByTestId("status-bar").filter({ hasText: "Created model functional: 239 parameters" }).waitFor();
  check(true, "CreateModel over the drawn cards: 239 parameters, as imported");

  // A reload keeps the canvas: the cards come back and are built again in the new session.
  await page.reload();
  await page.locator('[data-card-id="score_head"]').getByTestId("output-shape").waitFor({ timeout: 60_000 });
  check((await page.locator(".react-flow__node").count()) === 9, "a reload keeps the canvas and builds it again in a new session");
  page.once("dialog", (d) => void d.accept());
  await page.getByTestId("clear-canvas").click();
  await page.locator(".react-flow__node").first().waitFor({ state: "detached" });
  check(true, "clear the canvas");

  check(pageErrors.length === 0, `no page errors ${pageErrors.join("; ")}`);
  await page.screenshot({ path: `${out}end.png` });
} catch (e) {
  await page.screenshot({ path: `${out}failure.png` }).catch(() => {});
  console.error(e.message);
  process.exitCode = 1;
} finally {
  await browser.close();
}
