// Predict on one image, drawn or uploaded, resized to the model's input and sent to
// InferenceService.Predict; the model's outputs are shown as they come back.
import { useEffect, useRef, useState, type PointerEvent } from "react";
import { fail } from "../actions";
import { kiln } from "../client";
import { create } from "@bufbuild/protobuf";
import { DataType, TensorProtoSchema, type TensorProto } from "../gen/kiln/v1/data_pb";
import { useAppState } from "../store";

const SIZE = 196; // the drawing surface; the image is resized to the model's input from it

interface ImageShape {
  height: number;
  width: number;
  channels: number;
  channelsFirst: boolean;
  dims: bigint[]; // the model's per-sample shape, as sent
}

// The model's first input read as an image: (H, W, C), (C, H, W), (H, W) or a flat square.
function imageShape(shape: bigint[] | undefined): ImageShape | string {
  if (!shape || shape.length < 2) return "the model has no input";
  const dims = shape.slice(1).map(Number);
  if (dims.some((d) => d <= 0)) return `input shape ${dims.join("×")} has an open dimension`;
  const base = { dims: shape.slice(1), channelsFirst: false };
  if (dims.length === 3) {
    const [a, b, c] = dims;
    if ([1, 3, 4].includes(c)) return { ...base, height: a, width: b, channels: c };
    if ([1, 3, 4].includes(a)) return { ...base, height: b, width: c, channels: a, channelsFirst: true };
    return `input shape ${dims.join("×")} is not an image`;
  }
  if (dims.length === 2) return { ...base, height: dims[0], width: dims[1], channels: 1 };
  if (dims.length === 1) {
    const side = Math.round(Math.sqrt(dims[0]));
    if (side * side === dims[0]) return { ...base, height: side, width: side, channels: 1 };
  }
  return `input shape ${dims.join("×")} is not an image`;
}

function toTensor(canvas: HTMLCanvasElement, s: ImageShape): TensorProto {
  const small = document.createElement("canvas");
  small.width = s.width;
  small.height = s.height;
  const ctx = small.getContext("2d")!;
  ctx.imageSmoothingQuality = "high";
  ctx.drawImage(canvas, 0, 0, s.width, s.height);
  const px = ctx.getImageData(0, 0, s.width, s.height).data;
  const n = s.width * s.height;
  const values = new Array<number>(n * s.channels);
  for (let i = 0; i < n; i++) {
    const rgb = [px[4 * i], px[4 * i + 1], px[4 * i + 2]];
    const gray = (rgb[0] + rgb[1] + rgb[2]) / 3;
    for (let c = 0; c < s.channels; c++) {
      const v = (s.channels === 1 ? gray : rgb[c] ?? 255) / 255;
      values[s.channelsFirst ? c * n + i : i * s.channels + c] = v;
    }
  }
  return create(TensorProtoSchema, { dtype: DataType.FLOAT32, shape: [1n, ...s.dims], floatValues: values });
}

function decode(t: TensorProto): number[] {
  if (t.floatValues.length) return t.floatValues;
  const view = new DataView(t.data.buffer, t.data.byteOffset, t.data.byteLength);
  const out: number[] = [];
  switch (t.dtype) {
    case DataType.INT32:
      for (let i = 0; i + 4 <= view.byteLength; i += 4) out.push(view.getInt32(i, true));
      break;
    case DataType.INT64:
      for (let i = 0; i + 8 <= view.byteLength; i += 8) out.push(Number(view.getBigInt64(i, true)));
      break;
    case DataType.UINT8:
      for (let i = 0; i < view.byteLength; i++) out.push(view.getUint8(i));
      break;
    default:
      for (let i = 0; i + 4 <= view.byteLength; i += 4) out.push(view.getFloat32(i, true));
  }
  return out;
}

export function PredictPanel() {
  const sessionId = useAppState((s) => s.sessionId);
  const model = useAppState((s) => s.model);
  const info = useAppState((s) => s.modelInfo);
  const canvas = useRef<HTMLCanvasElement>(null);
  const drawing = useRef(false);
  const [invert, setInvert] = useState(false);
  const [outputs, setOutputs] = useState<number[]>();
  const [error, setError] = useState("");
  const shape = imageShape(info?.inputs[0]?.shape);

  const clear = () => {
    const ctx = canvas.current?.getContext("2d");
    if (!ctx) return;
    ctx.fillStyle = "#000";
    ctx.fillRect(0, 0, SIZE, SIZE);
    setOutputs(undefined);
  };
  useEffect(clear, []);

  // Fashion-MNIST-style input: a light object on black. Strokes are white and thick enough to
  // survive the resize to 28×28.
  const stroke = (e: PointerEvent<HTMLCanvasElement>, start: boolean) => {
    const c = canvas.current!;
    const ctx = c.getContext("2d")!;
    const r = c.getBoundingClientRect();
    const x = ((e.clientX - r.left) * SIZE) / r.width;
    const y = ((e.clientY - r.top) * SIZE) / r.height;
    ctx.strokeStyle = "#fff";
    ctx.lineWidth = 16;
    ctx.lineCap = "round";
    ctx.lineJoin = "round";
    if (start) {
      ctx.beginPath();
      ctx.moveTo(x, y);
    }
    ctx.lineTo(x, y);
    ctx.stroke();
  };

  const loadImage = async (file: File) => {
    const bitmap = await createImageBitmap(file);
    const ctx = canvas.current!.getContext("2d")!;
    clear();
    const k = Math.min(SIZE / bitmap.width, SIZE / bitmap.height);
    const w = bitmap.width * k;
    const h = bitmap.height * k;
    ctx.filter = invert ? "invert(1)" : "none";
    ctx.drawImage(bitmap, (SIZE - w) / 2, (SIZE - h) / 2, w, h);
    ctx.filter = "none";
  };

  const predict = async () => {
    setError("");
    if (!sessionId || !model) return setError("choose a model first");
    if (typeof shape === "string") return setError(shape);
    try {
      const r = await kiln.inference.predict({ sessionId, model, inputs: [toTensor(canvas.current!, shape)] });
      setOutputs(r.outputs[0] ? decode(r.outputs[0]) : []);
    } catch (e) {
      setError(fail("Predict", e).message);
    }
  };

  const sum = outputs?.reduce((a, b) => a + b, 0) ?? 0;
  const probabilities = outputs !== undefined && outputs.every((v) => v >= 0) && Math.abs(sum - 1) < 1e-3;
  const best = outputs?.reduce((bi, v, i, a) => (v > a[bi] ? i : bi), 0);
  const max = outputs ? Math.max(...outputs.map(Math.abs), 1e-9) : 1;
  return (
    <section className="panel" aria-labelledby="predict-heading" data-testid="predict-panel">
      <h2 id="predict-heading">Predict</h2>
      <p className="muted">{typeof shape === "string" ? shape : `Input resized to ${shape.height}×${shape.width}×${shape.channels}, values in [0, 1].`}</p>
      <canvas
        ref={canvas}
        width={SIZE}
        height={SIZE}
        className="draw"
        data-testid="predict-canvas"
        aria-label="Drawing area: draw a light shape on the black background"
        onPointerDown={(e) => {
          drawing.current = true;
          e.currentTarget.setPointerCapture(e.pointerId);
          stroke(e, true);
        }}
        onPointerMove={(e) => drawing.current && stroke(e, false)}
        onPointerUp={() => (drawing.current = false)}
      />
      <div className="row buttons">
        <button type="button" onClick={clear}>
          Clear
        </button>
        <label className="file-button">
          Image…
          <input
            type="file"
            accept="image/*"
            data-testid="predict-image"
            onChange={(e) => {
              const f = e.target.files?.[0];
              e.target.value = "";
              if (f) void loadImage(f).catch((err) => setError(String(err)));
            }}
          />
        </label>
        <label className="inline">
          <input type="checkbox" checked={invert} onChange={(e) => setInvert(e.target.checked)} />
          invert (dark on light)
        </label>
      </div>
      <button type="button" onClick={() => void predict()} disabled={!model} data-testid="predict-button">
        Predict with {model}
      </button>
      {error && (
        <div className="field-error" role="alert" data-testid="predict-error">
          {error}
        </div>
      )}
      {outputs && (
        <div data-testid="probabilities" aria-label={probabilities ? "class probabilities" : "model outputs"}>
          <div className="muted">
            {probabilities ? "class probabilities" : "outputs (not probabilities: the model ends without softmax)"} · top class{" "}
            <strong data-testid="predicted-class">{best}</strong>
          </div>
          <ol className="bars" start={0}>
            {outputs.map((v, i) => (
              <li key={i} className={i === best ? "best" : undefined}>
                <span className="bar-label">{i}</span>
                <span className="bar" style={{ width: `${(100 * Math.abs(v)) / max}%` }} />
                <span className="bar-value" data-testid={`probability-${i}`} data-value={v}>
                  {v.toFixed(4)}
                </span>
              </li>
            ))}
          </ol>
        </div>
      )}
    </section>
  );
}
