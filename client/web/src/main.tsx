// Entry point: styles, the app, and the connection to the server.
import "@xyflow/react/dist/style.css";
import "uplot/dist/uPlot.min.css";
import "./app.css";
import { StrictMode } from "react";
import { createRoot } from "react-dom/client";
import { App } from "./App";
import { keepCanvas, restoreCanvas } from "./persist";
import { start } from "./sync";

createRoot(document.getElementById("root")!).render(
  <StrictMode>
    <App />
  </StrictMode>,
);
restoreCanvas();
keepCanvas();
void start();
