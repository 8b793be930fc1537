"""Session: a client's workspace on the server - cards (layers), models, data, jobs and
predictions - and TensorRef, a card's output socket."""
import contextlib
import itertools
import sys
import threading
import time
from typing import TYPE_CHECKING, Dict, Iterator, List, Optional, Sequence, Union

import grpc
import numpy as np

from kiln.v1 import data_pb2, jobs_pb2, layers_pb2, model_pb2, service_pb2, training_pb2
from kiln_client.errors import CODES, KilnError, from_rpc_error, to_message
from kiln_client.progress import Progress
from kiln_client.streams import BackgroundStream
from kiln_client.tensors import to_array, to_tensor

if TYPE_CHECKING:  # client.py imports this module
    from kiln_client.client import Client


class TensorRef:
    """A symbolic tensor of the session graph: a card's "Output" socket."""

    def __init__(self, info: model_pb2.TensorInfo):
        self.id = info.id
        self.shape = tuple(None if d < 0 else d for d in info.shape)
        self.producer = info.producer

    def __repr__(self):
        return f"<TensorRef {self.id} {self.shape} from {self.producer}>"


def _ids(tensors) -> List[int]:
    return [t.id if isinstance(t, TensorRef) else int(t) for t in tensors]


def _history(finished: jobs_pb2.Finished) -> Dict[str, List[float]]:
    history: Dict[str, List[float]] = {}
    for epoch in finished.history:
        for m in epoch.logs:
            history.setdefault(m.name, []).append(m.value)
    return history


def _logs(metrics) -> Dict[str, float]:
    return {m.name: m.value for m in metrics}

class Session:
    """A session on the server: its graph, models, datasets and jobs."""

    def __init__(self, client: "Client", info: service_pb2.Session):
        self.client = client
        self.id = info.id
        self.name = info.name

    def _call(self, stub, method: str, request):
        return self.client._call(stub, method, request)

    def __enter__(self) -> "Session":
        return self

    def __exit__(self, *exc):
        """Deletes the session, so that a `with` block leaves nothing behind on the server."""
        try:
            self.delete()
        except KilnError as e:
            # Deleted already is fine; any other failure must not hide the block's own error.
            if exc[0] is None and e.code != grpc.StatusCode.NOT_FOUND:
                raise

    # --- building -----------------------------------------------------------------------
    def add_input(self, shape: Sequence[int], name: str = "") -> TensorRef:
        request = service_pb2.AddInputRequest(
            session_id=self.id, input=layers_pb2.Input(shape=list(shape), name=name))
        return TensorRef(self._call(self.client._models, "AddInput", request))

    def add_layer(self, spec: Union[dict, layers_pb2.LayerSpec], inputs=()):
        """Adds a card: `spec` is one layer message, e.g. {"conv2d": {"filters": 8, ...}}.
        Returns (layer info, output tensors)."""
        request = service_pb2.AddLayerRequest(
            session_id=self.id, spec=to_message(spec, layers_pb2.LayerSpec, "spec"),
            inputs=_ids(inputs))
        response = self._call(self.client._models, "AddLayer", request)
        return response.layer, [TensorRef(t) for t in response.outputs]

    def call_layer(self, layer: str, inputs) -> List[TensorRef]:
        """Calls an existing layer on other tensors (sharing its weights)."""
        request = service_pb2.CallLayerRequest(session_id=self.id, layer=layer,
                                               inputs=_ids(inputs))
        return [TensorRef(t) for t in self._call(self.client._models, "CallLayer", request).outputs]

    def create_model(self, inputs, outputs, name: str = "") -> model_pb2.ModelInfo:
        request = service_pb2.CreateModelRequest(session_id=self.id, name=name,
                                                 inputs=_ids(inputs), outputs=_ids(outputs))
        return self._call(self.client._models, "CreateModel", request)

    def define_model(self, definition: Union[dict, model_pb2.ModelDefinition],
                     replace: bool = False) -> model_pb2.ModelInfo:
        request = service_pb2.DefineModelRequest(
            session_id=self.id,
            definition=to_message(definition, model_pb2.ModelDefinition, "definition"),
            replace=replace)
        return self._call(self.client._models, "DefineModel", request)

    def models(self) -> List[model_pb2.ModelInfo]:
        return list(self._call(self.client._models, "ListModels",
                               service_pb2.ListModelsRequest(session_id=self.id)).models)

    def model(self, name: str) -> model_pb2.ModelInfo:
        return self._call(self.client._models, "GetModel",
                          service_pb2.GetModelRequest(session_id=self.id, name=name))

    def model_definition(self, name: str) -> model_pb2.ModelDefinition:
        """The model as the ModelDefinition define_model takes (layers, wiring, inputs, outputs
        and compile config; not the weights): also for a model imported from Keras."""
        return self._call(self.client._models, "GetModel",
                          service_pb2.GetModelRequest(session_id=self.id, name=name,
                                                      include_definition=True)).definition

    def delete_model(self, name: str):
        self._call(self.client._models, "DeleteModel",
                   service_pb2.DeleteModelRequest(session_id=self.id, name=name))

    def layer(self, name: str, model: str = "") -> model_pb2.LayerInfo:
        return self._call(self.client._models, "GetLayer",
                          service_pb2.GetLayerRequest(session_id=self.id, layer=name,
                                                      model=model))

    def compile(self, model: str, optimizer="adam", loss="sparse_categorical_crossentropy",
                metrics=("accuracy",), from_logits: bool = False) -> model_pb2.ModelInfo:
        """`optimizer`: "sgd", "adam" or a dict such as {"adam": {"learning_rate": 0.001}}."""
        opt = (training_pb2.Optimizer(name=optimizer) if isinstance(optimizer, str)
               else to_message(optimizer, training_pb2.Optimizer, "config.optimizer"))
        config = training_pb2.CompileConfig(
            optimizer=opt, loss=training_pb2.Loss(name=loss, from_logits=from_logits),
            metrics=list(metrics))
        return self._call(self.client._models, "Compile",
                          service_pb2.CompileRequest(session_id=self.id, model=model,
                                                     config=config))

    def get_weights(self, layer: str, model: str = "") -> Dict[str, np.ndarray]:
        response = self._call(self.client._models, "GetWeights",
                              service_pb2.GetWeightsRequest(session_id=self.id, layer=layer,
                                                            model=model))
        return {w.name: to_array(w.tensor) for w in response.weights}

    def set_weights(self, layer: str, weights: Dict[str, np.ndarray], model: str = ""):
        named = [service_pb2.NamedTensor(name=k, tensor=to_tensor(np.asarray(v, np.float32)))
                 for k, v in weights.items()]
        self._call(self.client._models, "SetWeights",
                   service_pb2.SetWeightsRequest(session_id=self.id, layer=layer, model=model,
                                                 weights=named))

    # --- Keras files ----------------------------------------------------------------------
    _FORMATS = {None: model_pb2.KERAS_FORMAT_UNSPECIFIED, "json": model_pb2.KERAS_FORMAT_JSON,
                "keras": model_pb2.KERAS_FORMAT_KERAS, "weights": model_pb2.KERAS_FORMAT_WEIGHTS}

    @classmethod
    def _format(cls, format: Optional[str]) -> int:
        if format not in cls._FORMATS:
            raise ValueError(f"format={format!r}: expected 'json', 'keras' or 'weights'")
        return cls._FORMATS[format]

    def import_model(self, file: Union[str, bytes], name: str = "", format: Optional[str] = None,
                     replace: bool = False, skip_compile: bool = False,
                     on_server: bool = False, chunk_bytes: int = 1 << 20) -> model_pb2.ModelInfo:
        """A model from a Keras file: model.to_json() text (Keras 2 or 3) or a .keras archive
        creates model `name` (default: the file's), compiled when the file holds a
        compile_config unless skip_compile; a .weights.h5 file loads weights into the existing
        model `name`. `file` is a local path or the file's bytes; with on_server, a path below
        the server's --data_root. The format is told from the bytes unless given."""
        request = service_pb2.ImportModelRequest(
            session_id=self.id, name=name, format=self._format(format), replace=replace,
            skip_compile=skip_compile)
        if on_server:
            request.path = file
            return self._call(self.client._models, "ImportModel", request)
        if isinstance(file, str):
            with open(file, "rb") as f:
                file = f.read()

        def chunks():
            yield service_pb2.ImportModelChunk(request=request)
            for offset in range(0, len(file), chunk_bytes):
                yield service_pb2.ImportModelChunk(data=file[offset:offset + chunk_bytes])
        return self._call(self.client._models, "ImportModelStream", chunks())

    def export_model(self, model: str, path: Optional[str] = None,
                     format: Optional[str] = None) -> bytes:
        """Model `model` as a Keras file: Keras 3 JSON ('json'), a .keras archive ('keras') or
        .weights.h5 weights ('weights'); the format defaults to what `path`'s name says (.keras,
        .weights.h5, else JSON). Returns the bytes, and writes them to `path` when given."""
        if format is None and path is not None:
            format = ("keras" if path.endswith(".keras") else
                      "weights" if path.endswith(".h5") else "json")
        request = service_pb2.ExportModelRequest(session_id=self.id, model=model,
                                                 format=self._format(format))
        data, total = [], 0
        try:
            for chunk in self.client._models.ExportModel(request, timeout=self.client.timeout):
                data.append(chunk.data)
                total = chunk.total_bytes
        except grpc.RpcError as e:
            raise from_rpc_error(e) from None
        content = b"".join(data)
        if len(content) != total:
            raise KilnError(grpc.StatusCode.DATA_LOSS,
                            f"received {len(content)} of the file's {total} bytes")
        if path is not None:
            with open(path, "wb") as f:
                f.write(content)
        return content

    # --- data ---------------------------------------------------------------------------
    def upload_dataset(self, name: str, x, y=None, chunk_bytes: int = 1 << 20,
                       streaming: bool = True):
        """Sends numpy arrays to the server as a session dataset: one client-streaming call,
        or (streaming=False) BeginUpload / AppendUploadChunk / FinishUpload unary calls, as a
        browser client without client streaming would."""
        xs = x if isinstance(x, (list, tuple)) else [x]
        arrays = [(f"x{i}" if len(xs) > 1 else "x", np.ascontiguousarray(a))
                  for i, a in enumerate(xs)]
        if y is not None:
            arrays.append(("y", np.ascontiguousarray(y)))
        header = service_pb2.UploadHeader(session_id=self.id, name=name)
        for key, a in arrays:
            spec = data_pb2.ArraySpec(format="raw", dtype=to_tensor(a[:0]).dtype,
                                      shape=list(a.shape))
            if key == "y":
                header.y.CopyFrom(spec)
            else:
                header.x.append(spec)

        def chunks():
            for key, a in arrays:
                data = (a.astype(np.float32) if a.dtype == np.float64 else a).tobytes()
                for offset in range(0, len(data), chunk_bytes):
                    yield offset, service_pb2.UploadChunk(
                        array=key, data=data[offset:offset + chunk_bytes])

        if streaming:
            requests = itertools.chain(
                [service_pb2.UploadDatasetRequest(header=header)],
                (service_pb2.UploadDatasetRequest(chunk=c) for _, c in chunks()))
            return self._call(self.client._data, "UploadDataset", requests)
        upload = self._call(self.client._data, "BeginUpload",
                            service_pb2.BeginUploadRequest(header=header)).upload_id
        for offset, chunk in chunks():
            self._call(self.client._data, "AppendUploadChunk",
                       service_pb2.AppendUploadChunkRequest(
                           session_id=self.id, upload_id=upload, chunk=chunk, offset=offset))
        return self._call(self.client._data, "FinishUpload",
                          service_pb2.FinishUploadRequest(session_id=self.id, upload_id=upload))

    def open_dataset(self, name: str, builtin: str = "", files=None, scale: float = 1.0):
        request = service_pb2.OpenDatasetRequest(session_id=self.id, name=name)
        if builtin:
            request.builtin = builtin
        else:
            request.files.CopyFrom(to_message(files, data_pb2.FileSource, "files"))
        if scale != 1.0:
            request.transform.scale = scale
        return self._call(self.client._data, "OpenDataset", request)

    def delete_dataset(self, name: str):
        self._call(self.client._data, "DeleteDataset",
                   service_pb2.DeleteDatasetRequest(session_id=self.id, name=name))

    def datasets(self) -> List[data_pb2.DatasetInfo]:
        return list(self._call(self.client._data, "ListDatasets",
                               service_pb2.ListDatasetsRequest(session_id=self.id)).datasets)

    def read_dataset(self, name: str, array: str = "x") -> np.ndarray:
        info = self._call(self.client._data, "GetDataset",
                          service_pb2.GetDatasetRequest(session_id=self.id, name=name))
        parts, offset = [], 0
        while not parts or offset < info.samples:  # one page at least: it carries the shape
            rows = self._call(self.client._data, "ReadDataset",
                              service_pb2.ReadDatasetRequest(session_id=self.id, name=name,
                                                             array=array, offset=offset))
            parts.append(to_array(rows))
            if not rows.shape or rows.shape[0] == 0:
                break
            offset += rows.shape[0]
        return np.concatenate(parts)

    # --- jobs ---------------------------------------------------------------------------
    @staticmethod
    def _data_ref(dataset: Optional[str], x, y) -> data_pb2.DataRef:
        if dataset:
            return data_pb2.DataRef(dataset=dataset)
        xs = x if isinstance(x, (list, tuple)) else [x]
        inline = data_pb2.InlineData(x=[to_tensor(a) for a in xs])
        if y is not None:
            inline.y.CopyFrom(to_tensor(np.asarray(y, dtype=np.float32)))
        return data_pb2.DataRef(inline=inline)

    def start_fit(self, model: str, dataset: Optional[str] = None, x=None, y=None,
                  epochs: int = 1, batch_size: int = 32, validation_split: float = 0.0,
                  validation_dataset: Optional[str] = None, shuffle: bool = True,
                  seed: Optional[int] = None, initial_epoch: int = 0,
                  checkpoint_every_batches: Optional[int] = None,
                  checkpoint_every_seconds: Optional[float] = None,
                  keep_checkpoints: Optional[int] = None) -> jobs_pb2.Job:
        """Starts a fit job with Keras's fit arguments. Without `seed` the session's seed (if
        it has one) picks it; job.seed tells which seed the job uses. The fit checkpoints at
        its start, every epoch end and when stopped, and also every checkpoint_every_batches
        batches and checkpoint_every_seconds seconds (None: the server's defaults); resume()
        continues it from the newest."""
        config = training_pb2.FitConfig(epochs=epochs, batch_size=batch_size, shuffle=shuffle,
                                        validation_split=validation_split,
                                        initial_epoch=initial_epoch)
        if seed is not None:
            config.seed = seed
        if checkpoint_every_batches is not None:
            config.checkpoint_every_batches = checkpoint_every_batches
        if checkpoint_every_seconds is not None:
            config.checkpoint_every_seconds = checkpoint_every_seconds
        if keep_checkpoints is not None:
            config.keep_checkpoints = keep_checkpoints
        request = service_pb2.StartFitRequest(session_id=self.id, model=model, config=config,
                                              data=self._data_ref(dataset, x, y))
        if validation_dataset:
            request.validation_data.CopyFrom(data_pb2.DataRef(dataset=validation_dataset))
        return self._call(self.client._jobs, "StartFit", request)

    def watch(self, job_id: str, from_sequence: int = 0,
              max_retries: int = 6) -> Iterator[jobs_pb2.JobEvent]:
        """The job's events after from_sequence, until it ends (a resumed job goes on after an
        earlier Finished event; the stream ends with the job).

        A dropped connection is resumed from the last event seen (each event is yielded exactly
        once); after max_retries failed reconnections in a row, with backoff, the error is
        raised. For a finished job and a from_sequence past its end, nothing is yielded."""
        last, retries = from_sequence, 0
        while True:
            request = service_pb2.WatchJobRequest(session_id=self.id, job_id=job_id,
                                                  from_sequence=last)
            call = None
            try:
                call = BackgroundStream(self.client._jobs.WatchJob(request))
                ended_interrupted = False
                for event in call:
                    last, retries = event.sequence, 0
                    ended_interrupted = (event.HasField("finished") and
                                         event.finished.state == jobs_pb2.INTERRUPTED)
                    yield event
                return
            except grpc.RpcError as e:
                # A server that shuts down ends its streams after the jobs' INTERRUPTED end.
                if ended_interrupted and e.code() == grpc.StatusCode.UNAVAILABLE:
                    return
                if e.code() != grpc.StatusCode.UNAVAILABLE or retries >= max_retries:
                    raise from_rpc_error(e) from None
                time.sleep(0.25 * 2 ** min(retries, 4))
                retries += 1
            finally:
                if call is not None:
                    call.close()  # a watcher that stops early (Ctrl-C, break) ends the stream

    def wait(self, job_id: str, on_event=None, cancel_on_interrupt: bool = True,
             queued_notice=None, from_sequence: int = 0) -> jobs_pb2.Finished:
        """Follows a job to its end; raises KilnError unless it succeeded.

        Ctrl-C (KeyboardInterrupt) cancels the job, as it stops Keras's fit, waits for it to
        end and raises KeyboardInterrupt; a second Ctrl-C stops waiting at once. With
        cancel_on_interrupt=False the job runs on and KeyboardInterrupt is raised at once."""
        last = from_sequence
        finished = None
        started = threading.Event()
        if queued_notice is not None:
            threading.Thread(target=lambda: started.wait(1.0) or queued_notice(), daemon=True
                             ).start()
        try:
            # closing: an interrupted watch ends its stream at once, not when collected.
            with contextlib.closing(self.watch(job_id, from_sequence=last)) as events:
                for event in events:
                    started.set()
                    last = event.sequence
                    if on_event is not None:
                        on_event(event)
                    if event.HasField("finished"):
                        finished = event.finished
            if finished is not None:
                return self._finished(job_id, finished)
        except KeyboardInterrupt:
            started.set()
            if not cancel_on_interrupt:
                raise
            print(f"\nCtrl-C: cancelling {job_id} (press Ctrl-C again to stop waiting)",
                  file=sys.stderr, flush=True)
            self.cancel(job_id)
            with contextlib.closing(self.watch(job_id, from_sequence=last)) as events:
                for event in events:
                    if on_event is not None:
                        on_event(event)
            raise
        raise KilnError(grpc.StatusCode.INTERNAL, f"job {job_id}: the event stream ended early")

    @staticmethod
    def _finished(job_id: str, finished: jobs_pb2.Finished) -> jobs_pb2.Finished:
        if finished.state != jobs_pb2.SUCCEEDED:
            raise KilnError(CODES.get(finished.error.code, grpc.StatusCode.UNKNOWN),
                            f"job {job_id} {jobs_pb2.JobState.Name(finished.state).lower()}: "
                            f"{finished.error.message}", job_id=job_id, state=finished.state)
        return finished

    def _follow(self, job: jobs_pb2.Job, verbose: int, progress_interval: float,
                from_sequence: int = 0):
        progress = Progress(interval=progress_interval) if verbose else None
        notice = None
        if verbose and job.state == jobs_pb2.QUEUED:
            def notice():
                print(f"{job.id} is queued: it starts when the jobs ahead of it end",
                      flush=True)
        return self.wait(job.id, progress, queued_notice=notice, from_sequence=from_sequence)

    def fit(self, model: str, dataset: Optional[str] = None, x=None, y=None, verbose: int = 1,
            progress_interval: float = 10.0, **config) -> Dict[str, List[float]]:
        """Keras-like fit: trains and returns History.history ({"loss": [...], ...}).

        Progress is printed unless verbose=0 (when the output is not a terminal, at least every
        progress_interval seconds). Ctrl-C cancels the job and raises KeyboardInterrupt."""
        job = self.start_fit(model, dataset, x, y, **config)
        return _history(self._follow(job, verbose, progress_interval))

    def start_resume(self, job_id: str) -> jobs_pb2.Job:
        """ResumeJob: continues an INTERRUPTED, FAILED or CANCELLED fit from its newest
        checkpoint, as the same job (its events go on after a `resumed` event)."""
        return self._call(self.client._jobs, "ResumeJob",
                          service_pb2.ResumeJobRequest(session_id=self.id, job_id=job_id))

    def resume(self, job_id: str, verbose: int = 1,
               progress_interval: float = 10.0) -> Dict[str, List[float]]:
        """Resumes a fit (start_resume) and follows it as fit() does; returns its whole
        History.history, the epochs before the checkpoint included."""
        job = self.start_resume(job_id)
        if verbose:
            print(f"{job.id} resumed from checkpoint {job.last_checkpoint}: epoch "
                  f"{job.epoch + 1}/{job.epochs}, batch {job.batch}", flush=True)
        return _history(self._follow(job, verbose, progress_interval,
                                     from_sequence=job.last_sequence))

    def checkpoints(self, job_id: str) -> List[jobs_pb2.Checkpoint]:
        """A fit's checkpoints, oldest first."""
        return list(self._call(self.client._jobs, "ListCheckpoints",
                               service_pb2.ListCheckpointsRequest(session_id=self.id,
                                                                  job_id=job_id)).checkpoints)

    def restore_checkpoint(self, job_id: str, number: int = 0) -> jobs_pb2.Checkpoint:
        """Loads a checkpoint's weights and optimizer state into the fit's model (number 0:
        the newest)."""
        return self._call(self.client._jobs, "RestoreCheckpoint",
                          service_pb2.RestoreCheckpointRequest(session_id=self.id, job_id=job_id,
                                                               number=number))

    def delete_checkpoint(self, job_id: str, number: int):
        self._call(self.client._jobs, "DeleteCheckpoint",
                   service_pb2.DeleteCheckpointRequest(session_id=self.id, job_id=job_id,
                                                       number=number))

    def start_evaluate(self, model: str, dataset: Optional[str] = None, x=None, y=None,
                       batch_size: int = 32) -> jobs_pb2.Job:
        request = service_pb2.StartEvaluateRequest(
            session_id=self.id, model=model, data=self._data_ref(dataset, x, y),
            config=training_pb2.EvaluateConfig(batch_size=batch_size))
        return self._call(self.client._jobs, "StartEvaluate", request)

    def evaluate(self, model: str, dataset: Optional[str] = None, x=None, y=None,
                 batch_size: int = 32, verbose: int = 0,
                 progress_interval: float = 10.0) -> Dict[str, float]:
        """Keras-like evaluate: {"loss": ..., "accuracy": ...}. Ctrl-C cancels the job."""
        job = self.start_evaluate(model, dataset, x, y, batch_size)
        return _logs(self._follow(job, verbose, progress_interval).results)

    def start_predict(self, model: str, dataset: Optional[str] = None, x=None,
                      batch_size: int = 32, output_dataset: str = "") -> jobs_pb2.Job:
        """A predict job; its predictions become the session dataset job.output_dataset."""
        request = service_pb2.StartPredictRequest(
            session_id=self.id, model=model, data=self._data_ref(dataset, x, None),
            config=training_pb2.PredictConfig(batch_size=batch_size),
            output_dataset=output_dataset)
        return self._call(self.client._jobs, "StartPredict", request)

    def predict_dataset(self, model: str, dataset: str, batch_size: int = 32,
                        keep: bool = False, verbose: int = 0):
        """Predictions for a whole session (or built-in) dataset, run as a job and read back.
        The server-side copy is deleted afterwards unless keep=True (it would count toward
        the session's byte limit)."""
        job = self.start_predict(model, dataset, batch_size=batch_size)
        self._follow(job, verbose, 10.0)
        predictions = self.read_dataset(job.output_dataset)
        if not keep:
            self.delete_dataset(job.output_dataset)
        return predictions

    def predict(self, model: str, x, batch_size: int = 0):
        """Unary Predict: numpy in, numpy out (a list when the model has several outputs)."""
        xs = x if isinstance(x, (list, tuple)) else [x]
        request = service_pb2.PredictRequest(session_id=self.id, model=model,
                                             inputs=[to_tensor(a) for a in xs],
                                             batch_size=batch_size)
        outputs = [to_array(t) for t in
                   self._call(self.client._inference, "Predict", request).outputs]
        return outputs[0] if len(outputs) == 1 else outputs

    def job(self, job_id: str) -> jobs_pb2.Job:
        return self._call(self.client._jobs, "GetJob",
                          service_pb2.GetJobRequest(session_id=self.id, job_id=job_id))

    def jobs(self) -> List[jobs_pb2.Job]:
        return list(self._call(self.client._jobs, "ListJobs",
                               service_pb2.ListJobsRequest(session_id=self.id)).jobs)

    def cancel(self, job_id: str) -> jobs_pb2.Job:
        return self._call(self.client._jobs, "CancelJob",
                          service_pb2.CancelJobRequest(session_id=self.id, job_id=job_id))

    def delete(self):
        self._call(self.client._sessions, "DeleteSession",
                   service_pb2.DeleteSessionRequest(session_id=self.id))
