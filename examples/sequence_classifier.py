"""Classify sequences with an LSTM and a softmax output (a Keras tutorial program).

The tutorial's Keras program, imports changed to rnnkit:

    model = Sequential()
    model.add(LSTM(128, input_shape=(timesteps, input_dim)))
    model.add(Dense(num_classes, activation='softmax'))
    model.compile(loss='categorical_crossentropy', optimizer='adam', metrics=['accuracy'])
    model.fit(X_train, Y_train, batch_size=32, epochs=10, validation_data=(X_val, Y_val))

The tutorial does not say what the data are; here each sequence is one of four noisy waveforms
(sine, square, sawtooth, or plain noise) with a random frequency, phase and amplitude,
and the model names the waveform. Labels are one-hot (``to_categorical``), as categorical
cross-entropy expects.

    python examples/sequence_classifier.py

Prints the validation accuracy (about 0.97); saves ``sequence_classifier.png`` (accuracy and
loss curves) with matplotlib. RNNKIT_EXAMPLES_QUICK=1 trains 3 epochs.
"""

import os

import numpy as np

from rnnkit.layers import LSTM, Dense  # was: from keras.layers import LSTM, Dense
from rnnkit.models import Sequential  # was: from keras.models import Sequential
from rnnkit.utils import set_random_seed, to_categorical

QUICK = os.environ.get("RNNKIT_EXAMPLES_QUICK") == "1"
set_random_seed(0)
rng = np.random.default_rng(0)

timesteps, input_dim, num_classes = 40, 1, 4
CLASS_NAMES = ["sine", "square", "sawtooth", "noise"]


def make_waves(count):
    """count noisy waveforms (count, timesteps, 1) and their class ids (count,)."""
    labels = rng.integers(0, num_classes, count)
    t = np.arange(timesteps)
    freq = rng.uniform(2.0, 5.0, (count, 1)) / timesteps  # cycles per step
    phase = rng.uniform(0, 1, (count, 1))
    cycle = (t * freq + phase) % 1.0  # position within the period, 0..1
    waves = np.stack(
        [
            np.sin(2 * np.pi * cycle),
            np.where(cycle < 0.5, 1.0, -1.0),
            2 * cycle - 1,
            0.7 * rng.standard_normal((count, timesteps)),
        ]
    )[labels, np.arange(count)]
    amplitude = rng.uniform(0.5, 1.5, (count, 1))
    x = amplitude * waves + 0.1 * rng.standard_normal((count, timesteps))
    return x[:, :, None], labels


X_train, y_train = make_waves(2000)
X_val, y_val = make_waves(500)
Y_train = to_categorical(y_train, num_classes)
Y_val = to_categorical(y_val, num_classes)

# Define the model architecture
model = Sequential()
model.add(LSTM(128, input_shape=(timesteps, input_dim)))
model.add(Dense(num_classes, activation="softmax"))

# Compile the model
model.compile(loss="categorical_crossentropy", optimizer="adam", metrics=["accuracy"])

# Train the model
history = model.fit(
    X_train,
    Y_train,
    batch_size=32,
    epochs=3 if QUICK else 10,
    validation_data=(X_val, Y_val),
    verbose=2,
)

val_loss, val_accuracy = model.evaluate(X_val, Y_val, verbose=0)
print(f"validation accuracy: {val_accuracy:.3f} (loss {val_loss:.3f})")
predicted = model.predict(X_val, verbose=0).argmax(axis=-1)
for k, name in enumerate(CLASS_NAMES):
    mask = y_val == k
    print(f"  {name:9s} recall {np.mean(predicted[mask] == k):.3f}")

try:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
except ImportError:
    print("matplotlib is not installed: no plot (pip install matplotlib)")
else:
    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    for k, name in enumerate(CLASS_NAMES):
        i = int(np.flatnonzero(y_val == k)[0])
        axes[0].plot(X_val[i, :, 0] + 3 * k, label=f"{name} -> {CLASS_NAMES[predicted[i]]}")
    axes[0].set_title("validation examples (offset) -> prediction")
    axes[0].legend(fontsize=8)
    epochs = np.arange(1, len(history.epoch) + 1)
    axes[1].plot(epochs, history.history["accuracy"], marker="o", label="accuracy")
    axes[1].plot(epochs, history.history["val_accuracy"], marker="o", label="val_accuracy")
    axes[1].set_xlabel("epoch")
    axes[1].legend()
    axes[1].set_title("accuracy")
    axes[2].plot(epochs, history.history["loss"], marker="o", label="loss")
    axes[2].plot(epochs, history.history["val_loss"], marker="o", label="val_loss")
    axes[2].set_xlabel("epoch")
    axes[2].legend()
    axes[2].set_title("loss (categorical cross-entropy)")
    fig.tight_layout()
    out = os.path.join(os.environ.get("RNNKIT_EXAMPLES_OUT", "."), "sequence_classifier.png")
    fig.savefig(out, dpi=100)
    print(f"saved {out}")
