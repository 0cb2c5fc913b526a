"""Character-level sequence-to-sequence translation with the functional API: English number
names to digits ("four hundred and twelve" -> "412"), the structure of Keras's
``lstm_seq2seq`` example, then the same with attention.

1. An encoder LSTM reads the phrase; its final states start a decoder LSTM that is trained
   with teacher forcing (it reads the target shifted by one step) to predict each next
   character of the digits.
2. From the same trained layers, an inference encoder and a one-step decoder are built as
   separate ``Model``s, and phrases are translated by greedy decoding.
3. The attention model adds ``Attention`` (Luong dot-product) over the encoder's outputs
   and a heat map of where each output digit looked.

The corpus is generated (every number 1..999, no downloads); a fifth of it is held out.

    python examples/number_translation.py

Prints the exact-match accuracy of greedy translations of the held-out phrases for both
models and some translations; with matplotlib installed saves ``number_translation.png``
(loss curves and an attention heat map). RNNKIT_EXAMPLES_QUICK=1 trains briefly.
"""

import os

import numpy as np

from rnnkit import Model
from rnnkit.layers import LSTM, Attention, Concatenate, Dense, Input
from rnnkit.optimizers import Adam
from rnnkit.utils import set_random_seed

QUICK = os.environ.get("RNNKIT_EXAMPLES_QUICK") == "1"
set_random_seed(0)
rng = np.random.default_rng(0)

ONES = "zero one two three four five six seven eight nine".split()
TEENS = "ten eleven twelve thirteen fourteen fifteen sixteen seventeen eighteen nineteen".split()
TENS = "- - twenty thirty forty fifty sixty seventy eighty ninety".split()


def words(n: int) -> str:
    """English name of 1 <= n <= 999."""
    parts = []
    if n >= 100:
        parts += [ONES[n // 100], "hundred"]
        n %= 100
        if n:
            parts.append("and")
    if n >= 20:
        parts.append(TENS[n // 10] + ("-" + ONES[n % 10] if n % 10 else ""))
    elif n >= 10:
        parts.append(TEENS[n - 10])
    elif n:
        parts.append(ONES[n])
    return " ".join(parts)


numbers = rng.permutation(np.arange(1, 1000))
pairs = [(words(int(n)), str(n)) for n in numbers]
split = len(pairs) * 4 // 5
train_pairs, test_pairs = pairs[:split], pairs[split:]

in_chars = sorted({c for src, _ in pairs for c in src})
out_chars = ["\t", "\n", *sorted({c for _, tgt in pairs for c in tgt})]  # start, end, digits
in_id = {c: i for i, c in enumerate(in_chars)}
out_id = {c: i for i, c in enumerate(out_chars)}
max_in = max(len(src) for src, _ in pairs)
max_out = max(len(tgt) for _, tgt in pairs) + 2  # with start and end


def encode(batch):
    """One-hot encoder inputs, decoder inputs (start + digits) and targets (digits + end),
    each padded with spaces / end characters to a fixed length."""
    n = len(batch)
    enc = np.zeros((n, max_in, len(in_chars)), np.float32)
    dec = np.zeros((n, max_out, len(out_chars)), np.float32)
    tgt = np.zeros((n, max_out, len(out_chars)), np.float32)
    for i, (src, digits) in enumerate(batch):
        for t, c in enumerate(src.ljust(max_in)):
            enc[i, t, in_id[c]] = 1
        seq = ("\t" + digits + "\n").ljust(max_out, "\n")
        for t, c in enumerate(seq):
            dec[i, t, out_id[c]] = 1
            if t > 0:
                tgt[i, t - 1, out_id[c]] = 1
        tgt[i, -1, out_id["\n"]] = 1
    return enc, dec, tgt


enc_train, dec_train, tgt_train = encode(train_pairs)
enc_test, _, _ = encode(test_pairs)
latent = 96 if QUICK else 128
epochs = 12 if QUICK else 40
print(f"{len(train_pairs)} training phrases, {len(test_pairs)} held out; e.g. {pairs[0]}")


def build(attention: bool):
    """The training model and the inference encoder and decoder, from the same layers."""
    enc_in = Input(shape=(None, len(in_chars)), name="phrase")
    enc_seq, h, c = LSTM(latent, return_sequences=True, return_state=True, name="encoder")(enc_in)
    dec_in = Input(shape=(None, len(out_chars)), name="digits_so_far")
    dec_lstm = LSTM(latent, return_sequences=True, return_state=True, name="decoder")
    head = Dense(len(out_chars), activation="softmax", name="next_digit")
    att = Attention(name="attention") if attention else None
    join = Concatenate(name="with_context") if attention else None

    def decode(tokens, states, memory):
        seq, h2, c2 = dec_lstm(tokens, initial_state=states)
        if att is None:
            return head(seq), h2, c2, None
        context, weights = att([seq, memory], return_attention_scores=True)
        return head(join([seq, context])), h2, c2, weights

    probs, _, _, _ = decode(dec_in, [h, c], enc_seq)
    model = Model([enc_in, dec_in], probs, name="attention" if attention else "seq2seq")
    encoder = Model(enc_in, [enc_seq, h, c])
    state_h, state_c = Input(shape=(latent,)), Input(shape=(latent,))
    memory = Input(shape=(None, latent))
    step_probs, h2, c2, weights = decode(dec_in, [state_h, state_c], memory)
    outputs = [step_probs, h2, c2] + ([weights] if weights is not None else [])
    decoder = Model([dec_in, state_h, state_c, memory], outputs)
    return model, encoder, decoder


def translate(encoder, decoder, enc_batch):
    """Greedy decoding: one output character per step, fed back in, until the end char."""
    memory, h, c = encoder.predict(enc_batch, verbose=0)
    n = enc_batch.shape[0]
    token = np.zeros((n, 1, len(out_chars)), np.float32)
    token[:, 0, out_id["\t"]] = 1
    texts = [""] * n
    done = np.zeros(n, bool)
    maps = []
    for _ in range(max_out):
        outs = decoder.predict([token, h, c, memory], verbose=0)
        probs, h, c = outs[:3]
        if len(outs) > 3:
            maps.append(outs[3][:, 0])
        ids = probs[:, -1].argmax(-1)
        for i, k in enumerate(ids):
            if not done[i]:
                if out_chars[k] == "\n":
                    done[i] = True
                else:
                    texts[i] += out_chars[k]
        token = np.eye(len(out_chars), dtype=np.float32)[ids][:, None]
        if done.all():
            break
    return texts, (np.stack(maps, axis=1) if maps else None)


results = {}
for attention in (False, True):
    set_random_seed(1)
    model, encoder, decoder = build(attention)
    model.compile(optimizer=Adam(learning_rate=0.005), loss="categorical_crossentropy")
    if not attention:
        model.summary()
    history = model.fit([enc_train, dec_train], tgt_train, batch_size=64, epochs=epochs, verbose=2)
    texts, maps = translate(encoder, decoder, enc_test)
    accuracy = float(np.mean([t == d for t, (_, d) in zip(texts, test_pairs)]))
    results[model.name] = (history.history["loss"], accuracy, texts, maps)
    print(f"{model.name}: held-out exact-match accuracy: {accuracy:.3f}")
    for (src, digits), got in list(zip(test_pairs, texts))[:4]:
        print(f"  {src!r:34} -> {got!r} (expected {digits!r})")

try:
    import matplotlib.pyplot as plt
except ImportError:
    print("matplotlib is not installed: no plot (pip install 'rnnkit[examples]')")
else:
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.5))
    for name, (loss, accuracy, _, _) in results.items():
        ax1.plot(loss, label=f"{name} (held-out accuracy {accuracy:.2f})")
    ax1.set(xlabel="epoch", ylabel="training loss", yscale="log", title="teacher forcing")
    ax1.legend()
    _, _, texts, maps = results["attention"]
    src, _ = test_pairs[0]
    steps = len(texts[0]) + 1
    ax2.imshow(maps[0, :steps, : len(src)], aspect="auto", cmap="viridis")
    ax2.set_xticks(range(len(src)), list(src), fontsize=7)
    ax2.set_yticks(range(steps), list(texts[0]) + ["end"])
    ax2.set(title=f"attention while translating {src!r}", xlabel="input character")
    fig.tight_layout()
    out = os.path.join(os.environ.get("RNNKIT_EXAMPLES_OUT", "."), "number_translation.png")
    fig.savefig(out, dpi=110)
    print(f"saved {out}")
