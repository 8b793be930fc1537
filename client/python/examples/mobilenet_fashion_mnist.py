#!/usr/bin/python3
"""Builds a MobileNet-style classifier on a Kiln server card by card - an Input card, then one
AddLayer call per layer card, as a visual editor would - trains it on Fashion-MNIST (the
server's built-in copy of Debian's dataset-fashion-mnist) with live progress, and prints its
accuracy on the 10,000 test images. The session is seeded, so every run starts from the same
weights and shuffles alike.

    PYTHONPATH=build/python /usr/bin/python3 client/python/examples/mobilenet_fashion_mnist.py \\
        --server localhost:50051 --epochs 8

With --keep FILE the session is kept (FILE records it and its results); a later run with
--restored FILE - after restarting kiln-server on the same state, say - evaluates and predicts
with the kept model, checks that it scores as it did, and deletes the session.
"""
import argparse
import json
import time

from kiln_client import Client


def conv_bn_relu(session, tensor, conv):
    """A convolution card, then BatchNormalization and ReLU cards."""
    _, (tensor,) = session.add_layer(conv, [tensor])
    _, (tensor,) = session.add_layer({"batch_normalization": {}}, [tensor])
    _, (tensor,) = session.add_layer({"relu": {}}, [tensor])
    return tensor


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server", default="localhost:50051")
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--fine_tune_epochs", type=int, default=2,
                        help="of --epochs, how many run at a tenth of the learning rate")
    parser.add_argument("--batch_size", type=int, default=64)
    parser.add_argument("--seed", type=int, default=1,
                        help="the session's seed: initial weights, shuffling and dropout")
    parser.add_argument("--keep", metavar="FILE",
                        help="keep the session, and record it and its results in FILE")
    parser.add_argument("--restored", metavar="FILE",
                        help="instead of training: use the session --keep recorded in FILE")
    args = parser.parse_args()

    client = Client(args.server)
    client.wait_ready()
    if args.restored:
        check_restored(client, args.restored)
    else:
        train(client, args)


def train(client, args):
    session = client.create_session("mobilenet-example", seed=args.seed)
    try:
        image = session.add_input([28, 28, 1], name="image")
        x = conv_bn_relu(session, image, {"conv2d": {"filters": 32, "kernel_size": [3],
                                                     "padding": "same", "use_bias": False}})
        for filters, stride in [(64, 1), (128, 2), (128, 2)]:
            x = conv_bn_relu(session, x, {"depthwise_conv2d": {"kernel_size": [3],
                                                               "strides": [stride],
                                                               "padding": "same",
                                                               "use_bias": False}})
            x = conv_bn_relu(session, x, {"conv2d": {"filters": filters, "kernel_size": [1],
                                                     "use_bias": False}})
        _, (x,) = session.add_layer({"global_average_pooling2d": {}}, [x])
        _, (x,) = session.add_layer({"dropout": {"rate": 0.2}}, [x])
        _, (probabilities,) = session.add_layer(
            {"dense": {"units": 10, "activation": "softmax"}}, [x])
        model = session.create_model([image], [probabilities], name="mobilenet")
        print(model.summary)

        start = time.time()
        # Adam at 0.001, then - as Keras users do by compiling again - the last epochs at a
        # tenth of it, so that the weights settle rather than jump between epochs.
        # A short run (EPOCHS=1) keeps at least its first epoch at the full rate.
        first = max(args.epochs - args.fine_tune_epochs, min(args.epochs, 1))
        for learning_rate, initial_epoch, epochs in [(0.001, 0, first),
                                                     (0.0001, first, args.epochs)]:
            if epochs <= initial_epoch:
                continue
            session.compile("mobilenet", optimizer={"adam": {"learning_rate": learning_rate}},
                            loss="sparse_categorical_crossentropy", metrics=["accuracy"])
            session.fit("mobilenet", dataset="fashion_mnist", epochs=epochs,
                        initial_epoch=initial_epoch, batch_size=args.batch_size)
        trained = time.time()
        results = session.evaluate("mobilenet", dataset="fashion_mnist", batch_size=500)
        done = time.time()
        print(f"training {trained - start:.0f} s, evaluation {done - trained:.1f} s")
        print(f"test loss {results['loss']:.4f}, test accuracy {results['accuracy']:.4f} "
              f"(10,000 Fashion-MNIST test images)")
        if args.keep:
            with open(args.keep, "w") as f:
                json.dump({"session": session.id, "results": results}, f)
            print(f"kept session {session.id}")
    finally:
        if not args.keep:
            session.delete()


def check_restored(client, path):
    """Evaluates and predicts with a kept model; its results must be the ones it had."""
    with open(path) as f:
        kept = json.load(f)
    with client.session(kept["session"]) as session:
        results = session.evaluate("mobilenet", dataset="fashion_mnist", batch_size=500)
        same = results == kept["results"]
        print(f"restored session {session.id}: test loss {results['loss']:.4f}, test accuracy "
              f"{results['accuracy']:.4f} ({'the same' if same else 'NOT the same'} as before "
              "the restart)")
        session.open_dataset("test", builtin="fashion_mnist:test")
        images = session.read_dataset("test")[:8]
        labels = session.read_dataset("test", array="y")[:8].astype(int)
        predicted = session.predict("mobilenet", images).argmax(axis=1)
        print(f"predicted classes of the first 8 test images: {predicted.tolist()} "
              f"(labels: {labels.tolist()})")
        if not same:
            raise SystemExit("the restored model does not score as it did before the restart")


if __name__ == "__main__":
    main()
