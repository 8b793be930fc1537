#include "client/cli/flags.h"

#include "absl/flags/flag.h"

ABSL_FLAG(std::string, server, "",
          "Kiln server, host:port (default: $KILN_SERVER or "
          "localhost:50051)");
ABSL_FLAG(std::string, session, "", "session id (default: $KILN_SESSION)");
ABSL_FLAG(std::string, model, "", "model name");
ABSL_FLAG(std::string, name, "", "name of what is created (session label, dataset)");
ABSL_FLAG(int64_t, ttl, 0, "session TTL in seconds (0: the server's default)");
ABSL_FLAG(bool, replace, false, "model define: replace a model of the same name");
ABSL_FLAG(std::string, optimizer, "adam", "compile: sgd or adam");
ABSL_FLAG(double, learning_rate, 0, "compile: learning rate (0: the optimizer's default)");
ABSL_FLAG(double, momentum, 0, "compile: SGD momentum");
ABSL_FLAG(std::string, loss, "sparse_categorical_crossentropy", "compile: loss");
ABSL_FLAG(bool, from_logits, false, "compile: the model outputs logits");
ABSL_FLAG(std::string, metrics, "accuracy", "compile: comma-separated metrics");
ABSL_FLAG(std::string, config, "", "compile: a CompileConfig JSON file (overrides the above)");
ABSL_FLAG(std::string, dataset, "", "dataset name (a session dataset or fashion_mnist)");
ABSL_FLAG(std::string, validation_dataset, "", "fit: validation data instead of a split");
ABSL_FLAG(int, epochs, 1, "fit: epochs");
ABSL_FLAG(int, batch_size, 32, "fit/evaluate/predict: batch size");
ABSL_FLAG(double, validation_split, 0, "fit: fraction of the data (its tail) to validate on");
ABSL_FLAG(int64_t, seed, -1, "fit: seed for shuffling and dropout (-1: random)");
ABSL_FLAG(bool, detach, false, "fit/evaluate/predict: print the job id and return");
ABSL_FLAG(std::string, builtin, "", "data open: a built-in dataset, e.g. fashion_mnist:train");
ABSL_FLAG(std::string, x, "", "data open/upload: features file (.npy, .csv, IDX)");
ABSL_FLAG(std::string, y, "", "data open/upload: targets file");
ABSL_FLAG(double, scale, 1.0, "data open/upload: multiply features, e.g. 0.00392157 (1/255)");
ABSL_FLAG(std::string, input, "", "predict: a .npy file of inputs (unary Predict)");
ABSL_FLAG(std::string, output, "", "predict: write the predictions to this .npy file");
ABSL_FLAG(int64_t, from, 0, "jobs watch: events after this sequence number");
ABSL_FLAG(bool, json, false, "print responses as protobuf JSON");
