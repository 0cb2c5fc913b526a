"""Character-level text generation: Embedding -> LSTM -> softmax over the characters.

Trains on ``examples/data/the_keeper.txt`` (a short original story written for rnnkit and
placed in the public domain) to predict each next character from the 40 before it, then
writes new text by sampling one character at a time with a temperature: low temperatures
pick likely characters (repetitive but tidy), high ones take more risks.

    python examples/text_generator.py

Prints the next-character accuracy and samples at temperatures 0.5 and 1.0; with
matplotlib installed saves ``text_generator.png`` (loss and accuracy curves).
RNNKIT_EXAMPLES_QUICK=1 trains 2 epochs.
"""

import os
import time

import numpy as np

from rnnkit.callbacks import ReduceLROnPlateau
from rnnkit.layers import LSTM, Dense, Embedding
from rnnkit.models import Sequential
from rnnkit.optimizers import Adam
from rnnkit.utils import set_random_seed

QUICK = os.environ.get("RNNKIT_EXAMPLES_QUICK") == "1"
set_random_seed(0)
rng = np.random.default_rng(0)

path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "the_keeper.txt")
with open(path, encoding="utf-8") as f:
    text = " ".join(f.read().lower().split())  # one line, single spaces

chars = sorted(set(text))
char_to_id = {c: i for i, c in enumerate(chars)}
ids = np.array([char_to_id[c] for c in text])
print(f"{len(text)} characters, vocabulary of {len(chars)}")

# Windows of 40 ids -> the id that follows, every 3 characters
seq_len, step = 40, 3
starts = np.arange(0, len(ids) - seq_len, step)
X = np.stack([ids[s : s + seq_len] for s in starts])  # (N, 40) integer ids
y = ids[starts + seq_len]  # (N,) next ids

model = Sequential(
    [
        Embedding(len(chars), 32, input_shape=(seq_len,)),
        LSTM(128),
        Dense(len(chars), activation="softmax"),
    ]
)
model.compile(
    optimizer=Adam(learning_rate=0.005),
    loss="sparse_categorical_crossentropy",
    metrics=["accuracy"],
)
model.summary()

start = time.perf_counter()
history = model.fit(
    X,
    y,
    batch_size=64,
    epochs=2 if QUICK else 25,
    verbose=2,
    callbacks=[ReduceLROnPlateau(monitor="loss", factor=0.5, patience=2)],
)
seconds = time.perf_counter() - start
print(
    f"next-character accuracy: {history.history['accuracy'][-1]:.3f} "
    f"(loss {history.history['loss'][-1]:.3f}, fit {seconds:.1f} s)"
)


def sample(probs, temperature):
    """Draw an id from probs sharpened (T < 1) or flattened (T > 1) by the temperature."""
    logits = np.log(np.maximum(probs, 1e-12)) / temperature
    p = np.exp(logits - logits.max())
    return int(rng.choice(len(p), p=p / p.sum()))


def generate(seed_text, length, temperature):
    window = [char_to_id[c] for c in seed_text[-seq_len:]]
    out = []
    for _ in range(length):
        probs = model.predict_on_batch(np.array([window]))[0]
        nxt = sample(probs, temperature)
        out.append(chars[nxt])
        window = window[1:] + [nxt]
    return "".join(out)


seed_text = text[:seq_len]
for temperature in (0.5, 1.0):
    print(f"\n--- temperature {temperature}, seeded with {seed_text!r}")
    print(seed_text + generate(seed_text, 60 if QUICK else 300, temperature))

try:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
except ImportError:
    print("matplotlib is not installed: no plot (pip install matplotlib)")
else:
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    ax1.plot(history.history["loss"], marker="o")
    ax1.set_xlabel("epoch")
    ax1.set_title("loss (sparse categorical cross-entropy)")
    ax2.plot(history.history["accuracy"], marker="o")
    ax2.set_xlabel("epoch")
    ax2.set_title("next-character accuracy")
    fig.tight_layout()
    out = os.path.join(os.environ.get("RNNKIT_EXAMPLES_OUT", "."), "text_generator.png")
    fig.savefig(out, dpi=100)
    print(f"saved {out}")
