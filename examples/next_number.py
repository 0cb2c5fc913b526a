"""Predict the next number of a sequence (a Keras tutorial program, ported).

The tutorial's data: the sequence 1..10 cut into windows of n=3 (``[1, 2, 3] -> 4`` ...
``[7, 8, 9] -> 10``), an LSTM(128), mean squared error, Adam, 100 epochs at batch size 1,
then ``predict`` on the next window. The tutorial's prose adds "a dense layer with one output
unit" that its code forgets; it is added here (an LSTM alone outputs 128 numbers in -1..1).
Imports changed from ``keras`` to ``rnnkit``.

    python examples/next_number.py

Prints the prediction for ``[8, 9, 10]`` (the true next number is 11); saves
``next_number.png`` with matplotlib. RNNKIT_EXAMPLES_QUICK=1 trains 10 epochs.
"""

import os

import numpy as np

from rnnkit.layers import LSTM, Dense  # was: from keras.layers import LSTM, Dense
from rnnkit.models import Sequential  # was: from keras.models import Sequential
from rnnkit.utils import set_random_seed

QUICK = os.environ.get("RNNKIT_EXAMPLES_QUICK") == "1"
set_random_seed(0)

sequence = np.arange(1, 11, dtype=float)
n = 3
# Sliding windows: [1, 2, 3] -> 4, ..., [7, 8, 9] -> 10 (the tutorial's seven pairs)
X_train = np.array([sequence[i : i + n] for i in range(len(sequence) - n)]).reshape(-1, n, 1)
y_train = sequence[n:]

# Define the LSTM model
model = Sequential()
model.add(LSTM(128, input_shape=(n, 1)))
model.add(Dense(1))  # the tutorial's text adds it; its code forgot
model.compile(loss="mean_squared_error", optimizer="adam")

# Train the LSTM model
history = model.fit(X_train, y_train, epochs=10 if QUICK else 100, batch_size=1, verbose=0)

# Predict the next number in the sequence
X_test = np.array([[8, 9, 10]], dtype=float).reshape(1, n, 1)
next_number = model.predict(X_test, verbose=0)
fitted = model.predict(X_train, verbose=0)[:, 0]
print("training windows -> predictions:")
for window, target, pred in zip(X_train[:, :, 0], y_train, fitted):
    print(f"  {window.astype(int).tolist()} -> {pred:6.3f}  (target {target:g})")
print(f"next number after [8, 9, 10]: {next_number[0, 0]:.3f}  (true: 11)")
print(f"final training loss (MSE): {history.history['loss'][-1]:.4f}")

try:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
except ImportError:
    print("matplotlib is not installed: no plot (pip install matplotlib)")
else:
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    ax1.plot(np.arange(n, 10), y_train, "o-", color="black", label="truth")
    ax1.plot(np.arange(n, 10), fitted, "x--", label="fitted")
    ax1.plot([10], [next_number[0, 0]], "r*", markersize=12, label="prediction for 11")
    ax1.set_xlabel("position")
    ax1.legend()
    ax1.set_title("next number in 1..10")
    ax2.semilogy(history.history["loss"])
    ax2.set_xlabel("epoch")
    ax2.set_ylabel("MSE")
    ax2.set_title("loss curve")
    fig.tight_layout()
    out = os.path.join(os.environ.get("RNNKIT_EXAMPLES_OUT", "."), "next_number.png")
    fig.savefig(out, dpi=100)
    print(f"saved {out}")
