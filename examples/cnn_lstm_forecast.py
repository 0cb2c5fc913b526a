"""A multivariate, multi-step forecaster with two outputs: Conv1D -> MaxPooling1D -> LSTM,
then one head forecasting the next 12 hours of demand and one classifying whether the
peak of that window will exceed a threshold.

The series are generated (no downloads): hourly electricity-style demand with daily and
weekly cycles and noise, driven by a temperature series that is given as a second input
feature, as are the hour of day and a weekend flag.

    python examples/cnn_lstm_forecast.py

Prints the test MAE of the forecast against the naive "same as 24 hours earlier" forecast,
and the accuracy of the peak warning; with matplotlib installed saves
``cnn_lstm_forecast.png`` (a forecast against the truth, and the loss curves of both
outputs). RNNKIT_EXAMPLES_QUICK=1 trains briefly.
"""

import os

import numpy as np

from rnnkit import Model
from rnnkit.layers import LSTM, Conv1D, Dense, Input, LayerNormalization, MaxPooling1D
from rnnkit.optimizers import Adam
from rnnkit.utils import set_random_seed

QUICK = os.environ.get("RNNKIT_EXAMPLES_QUICK") == "1"
set_random_seed(0)
rng = np.random.default_rng(0)

hours = 24 * (120 if QUICK else 365)
t = np.arange(hours)
hour = t % 24
weekend = ((t // 24) % 7 >= 5).astype(np.float32)
temperature = 12 + 8 * np.sin(2 * np.pi * t / (24 * 365)) + 4 * np.sin(2 * np.pi * (hour - 9) / 24)
temperature += rng.normal(0, 1.0, hours).cumsum() * 0.05
demand = (
    50
    + 12 * np.sin(2 * np.pi * (hour - 7) / 24)
    - 8 * weekend
    + 0.8 * np.abs(temperature - 16)
    + rng.normal(0, 2.0, hours)
)
features = np.stack(
    [demand, temperature, np.sin(2 * np.pi * hour / 24), np.cos(2 * np.pi * hour / 24), weekend],
    axis=1,
).astype(np.float32)
mean, std = features[:, :2].mean(0), features[:, :2].std(0)
features[:, :2] = (features[:, :2] - mean) / std

window, horizon = 72, 12
starts = np.arange(0, hours - window - horizon, 3)
X = np.stack([features[s : s + window] for s in starts])  # (N, 72, 5)
future = np.stack([features[s + window : s + window + horizon, 0] for s in starts])  # (N, 12)
threshold = np.quantile(future.max(axis=1), 0.7)
peak = (future.max(axis=1) > threshold).astype(np.float32)  # the top 30% of windows
split = len(X) * 4 // 5
print(f"{len(X)} windows of {window} hours x {X.shape[2]} features; forecasting {horizon} hours")

series = Input(shape=(window, X.shape[2]), name="history")
h = Conv1D(32, 5, padding="causal", activation="relu", name="conv")(series)
h = MaxPooling1D(2, name="pool")(h)
h = LayerNormalization(name="norm")(h)
h = LSTM(48, name="lstm")(h)
forecast = Dense(horizon, name="forecast")(h)
warning = Dense(1, activation="sigmoid", name="peak")(Dense(16, activation="relu")(h))
model = Model(series, [forecast, warning], name="cnn_lstm")
model.compile(
    optimizer=Adam(learning_rate=0.003),
    loss={"forecast": "mse", "peak": "binary_crossentropy"},
    loss_weights={"forecast": 1.0, "peak": 0.3},
    metrics={"forecast": ["mae"], "peak": ["accuracy"]},
)
model.summary()
history = model.fit(
    X[:split],
    {"forecast": future[:split], "peak": peak[:split]},
    validation_split=0.1,
    batch_size=64,
    epochs=6 if QUICK else 25,
    verbose=2,
)
pred, warn = model.predict(X[split:], verbose=0)
scale = std[0]
mae = float(np.abs(pred - future[split:]).mean() * scale)
day_before = np.stack([features[s + window - 24 : s + window - 24 + horizon, 0] for s in starts])
naive = float(np.abs(day_before[split:] - future[split:]).mean() * scale)
accuracy = float(((warn[:, 0] > 0.5) == (peak[split:] > 0.5)).mean())
print(f"test forecast MAE: {mae:.3f} (naive same-hour-yesterday forecast: {naive:.3f})")
print(
    f"test peak-warning accuracy: {accuracy:.3f} (always 'no peak': {1 - peak[split:].mean():.3f})"
)

try:
    import matplotlib.pyplot as plt
except ImportError:
    print("matplotlib is not installed: no plot (pip install 'rnnkit[examples]')")
else:
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.2))
    k = 7
    past = X[split + k, :, 0] * scale + mean[0]
    ax1.plot(range(-window, 0), past, label="history", color="gray")
    ax1.plot(range(horizon), future[split + k] * scale + mean[0], label="truth")
    ax1.plot(range(horizon), pred[k] * scale + mean[0], label="forecast")
    ax1.axhline(threshold * scale + mean[0], ls=":", color="red", label="peak threshold")
    ax1.set(xlabel="hours from now", ylabel="demand", title=f"P(peak) = {warn[k, 0]:.2f}")
    ax1.legend(fontsize=8)
    for key in ("forecast_loss", "peak_loss", "val_forecast_loss", "val_peak_loss"):
        ax2.plot(history.history[key], label=key)
    ax2.set(xlabel="epoch", ylabel="loss", yscale="log", title="two outputs, one model")
    ax2.legend(fontsize=8)
    fig.tight_layout()
    out = os.path.join(os.environ.get("RNNKIT_EXAMPLES_OUT", "."), "cnn_lstm_forecast.png")
    fig.savefig(out, dpi=110)
    print(f"saved {out}")
