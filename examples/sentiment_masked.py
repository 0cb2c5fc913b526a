"""Sentiment classification of padded token sequences: ``Embedding(mask_zero=True)`` and a
bidirectional LSTM, so that padding is skipped instead of learned from.

The reviews are generated (no downloads): short sentences of neutral words with a few words
of praise or complaint, and negations ("not good") that flip them, so that word order
matters. Token id 0 is padding; every batch is padded to its longest review.

    python examples/sentiment_masked.py

Prints the validation accuracy, and how much the predictions move when the same reviews are
padded to three times the length, on the left instead of the right (with the mask: not at
all, to float rounding); with matplotlib installed saves ``sentiment_masked.png`` (training
curves and the predictions under both paddings). RNNKIT_EXAMPLES_QUICK=1 trains briefly.
"""

import os

import numpy as np

from rnnkit import Model
from rnnkit.layers import LSTM, Bidirectional, Dense, Dropout, Embedding, Input
from rnnkit.utils import pad_sequences, set_random_seed

QUICK = os.environ.get("RNNKIT_EXAMPLES_QUICK") == "1"
set_random_seed(0)
rng = np.random.default_rng(0)

NEUTRAL = (
    "the a this film movie plot actor story it was is and with of to ending music scenes "
    "camera cast script director i we they felt watched saw"
).split()
GOOD = "good great wonderful moving brilliant fun superb".split()
BAD = "bad boring awful dull weak terrible clumsy".split()
words = ["<pad>", *NEUTRAL, *GOOD, *BAD, "not"]
word_id = {w: i for i, w in enumerate(words)}


def review() -> tuple[list[str], int]:
    """A review and its label: the sign of the (possibly negated) opinion words."""
    tokens: list[str] = []
    score = 0
    for _ in range(rng.integers(1, 4)):
        tokens += list(rng.choice(NEUTRAL, rng.integers(2, 8)))
        positive = rng.random() < 0.5
        negated = rng.random() < 0.3
        if negated:
            tokens.append("not")
        tokens.append(str(rng.choice(GOOD if positive else BAD)))
        score += 1 if positive != negated else -1
    if score == 0:
        tokens.append(str(rng.choice(GOOD)))
        score = 1
    return tokens, int(score > 0)


n = 3000 if QUICK else 6000
data = [review() for _ in range(n)]
seqs = [[word_id[w] for w in tokens] for tokens, _ in data]
labels = np.array([label for _, label in data])
x = pad_sequences(seqs, padding="post")  # (n, longest), zeros after each review
split = n * 4 // 5
print(f"{n} reviews, {len(words)} words, lengths {min(map(len, seqs))}..{x.shape[1]}")

tokens_in = Input(shape=(None,), dtype="int32", name="tokens")
h = Embedding(len(words), 16, mask_zero=True)(tokens_in)
h = Bidirectional(LSTM(24))(h)
h = Dropout(0.2)(h)
model = Model(tokens_in, Dense(1, activation="sigmoid")(h), name="sentiment")
model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
model.summary()
history = model.fit(
    x[:split],
    labels[:split],
    validation_data=(x[split:], labels[split:]),
    batch_size=64,
    epochs=8 if QUICK else 12,
    verbose=2,
)
accuracy = model.evaluate(x[split:], labels[split:], verbose=0)[1]
print(f"validation accuracy: {accuracy:.3f}")

# The same held-out reviews padded three times as long, on the other side.
long = pad_sequences([seqs[i] for i in range(split, n)], maxlen=3 * x.shape[1], padding="pre")
p_short = model.predict(x[split:], verbose=0)[:, 0]
p_long = model.predict(long, verbose=0)[:, 0]
change = float(np.abs(p_short - p_long).max())
print(f"largest change of a prediction when padded 3x longer on the left: {change:.2e}")

for text in ("the film was not good", "the plot was dull and the music was not brilliant"):
    ids = pad_sequences([[word_id[w] for w in text.split()]], maxlen=20, padding="post")
    print(f"  {text!r}: {model.predict(ids, verbose=0)[0, 0]:.2f} positive")

try:
    import matplotlib.pyplot as plt
except ImportError:
    print("matplotlib is not installed: no plot (pip install 'rnnkit[examples]')")
else:
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.2))
    ax1.plot(history.history["accuracy"], label="training")
    ax1.plot(history.history["val_accuracy"], label="validation")
    ax1.set(xlabel="epoch", ylabel="accuracy", title="Bidirectional LSTM over masked tokens")
    ax1.legend()
    ax2.scatter(p_short, p_long, s=6, alpha=0.5)
    ax2.plot([0, 1], [0, 1], color="gray", lw=0.8)
    ax2.set(
        xlabel=f"P(positive), padded right to {x.shape[1]}",
        ylabel=f"P(positive), padded left to {long.shape[1]}",
        title=f"padding changes nothing (max {change:.1e})",
    )
    fig.tight_layout()
    out = os.path.join(os.environ.get("RNNKIT_EXAMPLES_OUT", "."), "sentiment_masked.png")
    fig.savefig(out, dpi=110)
    print(f"saved {out}")
