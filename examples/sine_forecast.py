"""Sine-wave forecasting with a stacked LSTM (a Keras tutorial program, ported to rnnkit).

The Keras original, with only the import changed: ``import tensorflow as tf`` became
``import rnnkit as tf``, so ``tf.keras.Sequential`` and ``tf.keras.layers.LSTM`` are
rnnkit's. The tutorial leaves its training step empty; it is filled in here with
``fit(X, y, epochs=20, batch_size=32)``.

    python examples/sine_forecast.py

Prints the training MSE (about 1e-5 after 20 epochs) and the time ``fit`` took; with
matplotlib installed it saves ``sine_forecast.png`` (predictions vs truth, loss curve).
Set RNNKIT_EXAMPLES_QUICK=1 for a 3-epoch smoke run, RNNKIT_EXAMPLES_OUT=dir for the PNG.
"""

import os
import time

import numpy as np

import rnnkit as tf  # was: import tensorflow as tf

QUICK = os.environ.get("RNNKIT_EXAMPLES_QUICK") == "1"
tf.utils.set_random_seed(0)

# Step 2: prepare data. Generate a sine wave
time_steps = np.linspace(0, 100, 1000)
data = np.sin(time_steps)


# Prepare the dataset
def create_dataset(data, time_step=10):
    X, y = [], []
    for i in range(len(data) - time_step - 1):
        X.append(data[i : (i + time_step)])
        y.append(data[i + time_step])
    return np.array(X), np.array(y)


time_step = 10
X, y = create_dataset(data, time_step)
# Reshape input to be [samples, time steps, features]
X = X.reshape(X.shape[0], X.shape[1], 1)

# Step 3: build the LSTM model
model = tf.keras.Sequential(
    [
        tf.keras.layers.LSTM(50, return_sequences=True, input_shape=(time_step, 1)),
        tf.keras.layers.LSTM(50, return_sequences=False),
        tf.keras.layers.Dense(1),
    ]
)
model.compile(optimizer="adam", loss="mean_squared_error")
model.summary()

# Step 4: train the model
start = time.perf_counter()
history = model.fit(X, y, epochs=3 if QUICK else 20, batch_size=32, verbose=2)
fit_seconds = time.perf_counter() - start

# Step 5: make predictions
predictions = model.predict(X, verbose=0)
mse = float(np.mean((predictions[:, 0] - y) ** 2))
print(f"train MSE: {mse:.3e}  (fit: {fit_seconds:.2f} s for {len(history.epoch)} epochs)")

# Plot the results
try:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
except ImportError:
    print("matplotlib is not installed: no plot (pip install matplotlib)")
else:
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4))
    ax1.plot(time_steps[time_step : time_step + len(y)], y, label="True Data")
    ax1.plot(
        time_steps[time_step : time_step + len(y)], predictions[:, 0], "--", label="Predictions"
    )
    ax1.set_xlabel("t")
    ax1.set_title(f"next-value forecast, train MSE {mse:.2e}")
    ax1.legend()
    ax2.semilogy(np.arange(1, len(history.epoch) + 1), history.history["loss"], marker="o")
    ax2.set_xlabel("epoch")
    ax2.set_ylabel("training loss (MSE)")
    ax2.set_title("loss curve")
    fig.tight_layout()
    out = os.path.join(os.environ.get("RNNKIT_EXAMPLES_OUT", "."), "sine_forecast.png")
    fig.savefig(out, dpi=100)
    print(f"saved {out}")
