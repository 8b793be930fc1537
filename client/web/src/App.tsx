// The editor's layout: palette | canvas | panels, with the top bar and status bar around them.
import { ReactFlowProvider } from "@xyflow/react";
import { Canvas } from "./components/Canvas";
import { CompilePanel } from "./components/CompilePanel";
import { DataPanel } from "./components/DataPanel";
import { ModelPanel } from "./components/ModelPanel";
import { Palette } from "./components/Palette";
import { PredictPanel } from "./components/PredictPanel";
import { StatusBar } from "./components/StatusBar";
import { TopBar } from "./components/TopBar";
import { TrainPanel } from "./components/TrainPanel";

export function App() {
  return (
    <ReactFlowProvider>
      <div className="app">
        <TopBar />
        <Palette />
        <main className="workspace" aria-label="Card editor">
          <Canvas />
        </main>
        <aside className="panels" aria-label="Model, data, training and prediction">
          <ModelPanel />
          <CompilePanel />
          <DataPanel />
          <TrainPanel />
          <PredictPanel />
        </aside>
        <StatusBar />
      </div>
    </ReactFlowProvider>
  );
}
