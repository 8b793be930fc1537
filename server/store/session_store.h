// SessionStore: where the service keeps what it must not lose. The service logic
// (server/service) is handed one and calls it for every change before it answers; it never
// sees SQL or files.
//
// Contract of every mutating call: when it returns OK the change is durable (it survives a
// crash of the process, and with the database's synchronous=FULL a crash of the machine);
// when it fails nothing changed, on disk either. Calls are thread-safe.
//
// Two implementations: SqliteStore (a state directory: SQLite metadata and event logs, tensor
// files) and MemoryStore (--ephemeral: nothing is written; only checkpoints are kept, in
// memory, so that ResumeJob and RestoreCheckpoint work while the process lives).
#ifndef KILN_SERVER_STORE_SESSION_STORE_H_
#define KILN_SERVER_STORE_SESSION_STORE_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "kiln/v1/jobs.pb.h"
#include "server/store/records.pb.h"
#include "server/store/tensor_file.h"

namespace kiln::store {

// The store's name for a session: every call below that takes a `session_id` takes this.
inline const std::string& StoreKey(const SessionRecord& record) {
  return record.store_key().empty() ? record.id() : record.store_key();
}

// A session as stored, for the service to rebuild at start. Tensors are read on demand with
// ReadTensors(session, file).
struct StoredSession {
  SessionRecord record;       // store_key set
  std::vector<OpRecord> ops;  // in the order they were made
  struct Weights {
    std::string scope;  // "" for the session's graph, else the DefineModel model's name
    std::string layer;
    std::string file;
  };
  std::vector<Weights> weights;
  struct Optimizer {
    std::string model, file;
  };
  std::vector<Optimizer> optimizers;
  struct Dataset {
    DatasetRecord record;
    std::string file;  // empty for a built-in dataset (record.reopen)
  };
  std::vector<Dataset> datasets;
  struct Job {
    JobRecord record;
    std::vector<v1::JobEvent> events;
    std::vector<CheckpointRecord> checkpoints;
  };
  std::vector<Job> jobs;  // in the order they were started
  // Rows of this session that could not be read (OK when none): the session is damaged.
  absl::Status damage;
};

// The tensors of one layer's weights, by weight name.
struct LayerTensors {
  std::string scope, layer;
  std::vector<NamedTensor> tensors;
};

// Weights stored with a model's creation (ImportModel): its layers' and, optionally, its
// optimizer's state.
struct ModelWeights {
  std::vector<LayerTensors> layers;
  std::vector<NamedTensor> optimizer;  // empty: none
};

class SessionStore {
 public:
  virtual ~SessionStore() = default;

  // Whether changes outlive the process (false for MemoryStore).
  virtual bool durable() const = 0;
  // Where the state is kept, for messages ("--ephemeral" for MemoryStore).
  virtual std::string location() const = 0;

  // Every stored session, each with the damage found reading its rows.
  virtual absl::StatusOr<std::vector<StoredSession>> LoadSessions() = 0;
  // DATA_LOSS when the file is missing, truncated or damaged.
  virtual absl::StatusOr<std::vector<NamedTensor>> ReadTensors(const std::string& session_id,
                                                               const std::string& file) = 0;

  // Sessions. DeleteSession removes every row and file of it. Every other change to a session
  // that is not stored (deleted meanwhile) fails with NOT_FOUND and stores nothing.
  virtual absl::Status CreateSession(const SessionRecord& session) = 0;
  virtual absl::Status UpdateSession(const SessionRecord& session) = 0;
  virtual absl::Status DeleteSession(const std::string& session_id) = 0;

  // Graph changes (AddInput, AddLayer, CallLayer), with the session's record after them.
  virtual absl::Status AppendOp(const SessionRecord& session, const OpRecord& op) = 0;
  // A model (re)created by CreateModel or DefineModel: drops the model's earlier ops, its
  // optimizer state and - for DefineModel's own graph, `scope` = the model's name - the
  // weights of that scope. `weights` (may be null) are stored in the same transaction.
  virtual absl::Status PutModel(const SessionRecord& session, const std::string& model,
                                const OpRecord& op, bool own_scope,
                                const ModelWeights* weights) = 0;
  virtual absl::Status DeleteModel(const std::string& session_id, const std::string& model,
                                   bool own_scope) = 0;
  // Compile: replaces the model's earlier Compile and drops its optimizer state.
  virtual absl::Status PutCompile(const std::string& session_id, const std::string& model,
                                  const OpRecord& op) = 0;
  // Weights of some layers and, when `optimizer` is not null, the optimizer state of `model`:
  // SetWeights, the end of a fit, RestoreCheckpoint.
  virtual absl::Status PutWeights(const std::string& session_id,
                                  absl::Span<const LayerTensors> layers, const std::string& model,
                                  const std::vector<NamedTensor>* optimizer) = 0;

  // Datasets; `arrays` null for a built-in one (record.reopen set).
  virtual absl::Status PutDataset(const std::string& session_id, const DatasetRecord& dataset,
                                  const std::vector<NamedTensor>* arrays) = 0;
  virtual absl::Status DeleteDataset(const std::string& session_id, const std::string& name) = 0;

  // Jobs: the record when a job starts (with the session's record, whose seed draws moved),
  // then its events in order.
  virtual absl::Status PutJob(const SessionRecord& session, const JobRecord& job) = 0;
  virtual absl::Status AppendEvent(const std::string& session_id, const v1::JobEvent& event) = 0;

  // Checkpoints of fit jobs: adding one drops the job's oldest beyond `keep`.
  virtual absl::Status PutCheckpoint(const std::string& session_id,
                                     const CheckpointRecord& checkpoint,
                                     absl::Span<const NamedTensor> tensors, int keep) = 0;
  virtual absl::StatusOr<std::vector<NamedTensor>> ReadCheckpoint(const std::string& session_id,
                                                                  const std::string& job_id,
                                                                  int64_t number) = 0;
  virtual absl::Status DeleteCheckpoint(const std::string& session_id, const std::string& job_id,
                                        int64_t number) = 0;
};

}  // namespace kiln::store

#endif  // KILN_SERVER_STORE_SESSION_STORE_H_
