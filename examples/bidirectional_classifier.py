"""A bidirectional LSTM classifier: does a sequence end with the symbol it starts with?

Each input is 30 random symbols (ids 0..4); the label is 1 when the last symbol equals the
first (half the sequences, by construction). A forward LSTM must carry the first symbol
through 29 steps of noise; a ``Bidirectional`` LSTM sees each end of the sequence fresh in
one of its directions and learns the task within a few epochs. Both are trained with the
same budget for comparison.

    python examples/bidirectional_classifier.py

Prints both validation accuracies; with matplotlib installed saves
``bidirectional_classifier.png`` (validation accuracy per epoch). RNNKIT_EXAMPLES_QUICK=1
trains 2 epochs.
"""

import os

import numpy as np

from rnnkit.layers import LSTM, Bidirectional, Dense, Embedding
from rnnkit.models import Sequential
from rnnkit.utils import set_random_seed

QUICK = os.environ.get("RNNKIT_EXAMPLES_QUICK") == "1"
EPOCHS = 2 if QUICK else 15
set_random_seed(0)
rng = np.random.default_rng(0)

T, SYMBOLS = 30, 5


def make_data(count):
    x = rng.integers(0, SYMBOLS, (count, T))
    same = rng.random(count) < 0.5
    shift = rng.integers(1, SYMBOLS, count)  # a different last symbol when not `same`
    x[:, -1] = np.where(same, x[:, 0], (x[:, 0] + shift) % SYMBOLS)
    return x, same.astype(np.float32)


x_train, y_train = make_data(4000)
x_val, y_val = make_data(1000)

models = {
    "Bidirectional(LSTM(16))": Sequential(
        [
            Embedding(SYMBOLS, 8, input_shape=(T,)),
            Bidirectional(LSTM(16)),
            Dense(32, activation="relu"),  # "equal?" is not linear in the two end states
            Dense(1, activation="sigmoid"),
        ]
    ),
    "LSTM(32)": Sequential(
        [
            Embedding(SYMBOLS, 8, input_shape=(T,)),
            LSTM(32),
            Dense(32, activation="relu"),
            Dense(1, activation="sigmoid"),
        ]
    ),
}
histories = {}
for name, model in models.items():
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
    print(f"\n{name}: {model.count_params()} parameters")
    histories[name] = model.fit(
        x_train, y_train, batch_size=32, epochs=EPOCHS, validation_data=(x_val, y_val), verbose=2
    )

print()
for name, model in models.items():
    loss, accuracy = model.evaluate(x_val, y_val, verbose=0)
    print(f"{name:24s} validation accuracy: {accuracy:.3f}")

try:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
except ImportError:
    print("matplotlib is not installed: no plot (pip install matplotlib)")
else:
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    for name, hist in histories.items():
        epochs = np.arange(1, len(hist.epoch) + 1)
        ax1.plot(epochs, hist.history["val_accuracy"], marker="o", label=name)
        ax2.plot(epochs, hist.history["loss"], marker="o", label=name)
    ax1.set_xlabel("epoch")
    ax1.set_title("validation accuracy (first symbol == last?)")
    ax1.legend()
    ax2.set_xlabel("epoch")
    ax2.set_title("training loss (binary cross-entropy)")
    ax2.legend()
    fig.tight_layout()
    out = os.path.join(os.environ.get("RNNKIT_EXAMPLES_OUT", "."), "bidirectional_classifier.png")
    fig.savefig(out, dpi=100)
    print(f"saved {out}")
