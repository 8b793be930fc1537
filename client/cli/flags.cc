#include "client/cli/flags.h"

#include "absl/flags/flag.h"

// Each flag's help is the line `kiln CMD --help` prints for it; which commands take which flags
// is in the command table (command_table.cc).
ABSL_FLAG(std::string, server, "",
          "Kiln server, HOST[:PORT] (default: $KILN_SERVER, else localhost:50051; the port "
          "defaults to 50051)");
ABSL_FLAG(std::string, token, "",
          "bearer token for a server with --auth_tokens_file (default: $KILN_TOKEN; prefer the "
          "variable: a flag shows in `ps`)");
ABSL_FLAG(std::string, tls_ca, "",
          "PEM CA certificates that sign the server's certificate: connect with TLS");
ABSL_FLAG(std::string, tls_cert, "", "PEM client certificate for mutual TLS (with --tls_key)");
ABSL_FLAG(std::string, tls_key, "", "PEM private key of --tls_cert");
ABSL_FLAG(std::string, session, "",
          "session id (default: $KILN_SESSION; `kiln session create` makes one)");
ABSL_FLAG(std::string, model, "", "model name (default: the session's only model)");
ABSL_FLAG(std::string, name, "", "name of what is created (a session's label, a dataset)");
ABSL_FLAG(int64_t, ttl, 0, "idle seconds before the session expires (0: the server's default)");
ABSL_FLAG(bool, replace, false, "replace a model of the same name");
ABSL_FLAG(std::string, optimizer, "adam", "sgd or adam");
ABSL_FLAG(double, learning_rate, 0, "learning rate (0: the optimizer's Keras default)");
ABSL_FLAG(double, momentum, 0, "SGD momentum");
ABSL_FLAG(std::string, loss, "sparse_categorical_crossentropy", "loss, by Keras name");
ABSL_FLAG(bool, from_logits, false, "the model outputs logits rather than probabilities");
ABSL_FLAG(std::string, metrics, "accuracy", "comma-separated metrics, by Keras name");
ABSL_FLAG(std::string, config, "", "a CompileConfig in protobuf JSON (instead of the flags above)");
ABSL_FLAG(std::string, dataset, "",
          "dataset: one of the session's, or the built-in fashion_mnist (its train split for "
          "fit, its test split otherwise)");
ABSL_FLAG(std::string, validation_dataset, "",
          "validate on this dataset after each epoch (instead of --validation_split)");
ABSL_FLAG(int, epochs, 1, "epochs to train");
ABSL_FLAG(int, batch_size, 32, "samples per batch");
ABSL_FLAG(double, validation_split, 0,
          "fraction of the data, taken from its end, to validate on after each epoch");
ABSL_FLAG(int64_t, seed, -1, "a random seed (-1: none); each command's help says of what");
ABSL_FLAG(int64_t, checkpoint_every_batches, 0,
          "also checkpoint after every N batches (0: only at epoch ends, when stopped, and by "
          "time)");
ABSL_FLAG(double, checkpoint_every_seconds, -1,
          "also checkpoint when this many seconds passed since the last (0: not by time; -1: "
          "the server's default)");
ABSL_FLAG(int, keep_checkpoints, 0, "checkpoints to keep, newest first (0: the server's default)");
ABSL_FLAG(bool, detach, false, "print the job's id and return, leaving the job running");
ABSL_FLAG(std::string, builtin, "",
          "a built-in dataset: fashion_mnist:train or fashion_mnist:test");
ABSL_FLAG(std::string, x, "", "features file below the server's --data_root (.npy, .csv, IDX)");
ABSL_FLAG(std::string, y, "", "targets file");
ABSL_FLAG(double, scale, 1.0, "multiply the features, e.g. 0.00392157 (1/255) for image bytes");
ABSL_FLAG(std::string, input, "", "a .npy file of inputs, sent in one Predict call");
ABSL_FLAG(std::string, output, "", "write the result to this .npy file");
ABSL_FLAG(bool, keep, false,
          "keep the predictions in the session as a dataset (they count toward its byte limit)");
ABSL_FLAG(std::string, array, "x", "which array: x (x0, x1, ... with several inputs) or y");
ABSL_FLAG(std::string, output_dir, "", "write each weight to DIR/LAYER.WEIGHT.npy");
ABSL_FLAG(int64_t, from, 0, "show the events after this sequence number");
ABSL_FLAG(absl::Duration, wait, absl::ZeroDuration(),
          "keep asking this long (e.g. 30s) until the server answers SERVING");
ABSL_FLAG(std::string, service, "",
          "a service to check, e.g. kiln.v1.ModelService (default: the whole server)");
ABSL_FLAG(absl::Duration, progress_interval, absl::Seconds(10),
          "when the output is not a terminal, print progress at least this often");
ABSL_FLAG(bool, json, false, "print responses as protobuf JSON");
ABSL_FLAG(std::string, format, "",
          "Keras file format: json, keras or weights (default: from the file's name on export, "
          "from its bytes on import)");
ABSL_FLAG(bool, skip_compile, false, "import the model uncompiled, ignoring its compile_config");
ABSL_FLAG(bool, on_server, false,
          "FILE is a path below the server's --data_root, read by the server");
