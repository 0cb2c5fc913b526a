"""Keras programs of the kinds issue 12 names, changed only in their imports, run and learn.

Each program below is written against Keras 3 (``import keras``, ``from keras import
layers``), in the structure of Keras's own examples of that kind: the character-level
``lstm_seq2seq`` (teacher forcing, then separate inference encoder and decoder models and
greedy decoding), the IMDB bidirectional LSTM (padded token ids, ``Embedding``, two
``Bidirectional(LSTM)``), and character-level text generation (``Sequential``, ``RMSprop``,
sampling with a temperature). Their data is generated in the program (no downloads) and
small enough for a test. The test replaces only the import lines with rnnkit's Keras
namespace, runs the program, and checks what it learned; where Keras is installed, the
unchanged program runs under Keras too, so each is a real Keras program.
"""

from __future__ import annotations

import os
import textwrap

import pytest

SEQ2SEQ = """
import numpy as np
import keras
from keras import layers

# A phrase corpus: number words to digit strings ("three one four" -> "314").
rng = np.random.default_rng(0)
words = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
pairs = []
for _ in range(1200):
    digits = rng.integers(0, 10, rng.integers(1, 4))
    pairs.append((" ".join(words[d] for d in digits), "\\t" + "".join(map(str, digits)) + "\\n"))
input_texts, target_texts = zip(*pairs)
input_chars = sorted(set("".join(input_texts)))
target_chars = sorted(set("".join(target_texts)))
num_encoder_tokens, num_decoder_tokens = len(input_chars), len(target_chars)
max_encoder_seq_length = max(len(t) for t in input_texts)
max_decoder_seq_length = max(len(t) for t in target_texts)
input_token_index = {c: i for i, c in enumerate(input_chars)}
target_token_index = {c: i for i, c in enumerate(target_chars)}

encoder_input_data = np.zeros((len(pairs), max_encoder_seq_length, num_encoder_tokens), "float32")
decoder_input_data = np.zeros((len(pairs), max_decoder_seq_length, num_decoder_tokens), "float32")
decoder_target_data = np.zeros((len(pairs), max_decoder_seq_length, num_decoder_tokens), "float32")
for i, (input_text, target_text) in enumerate(pairs):
    for t, char in enumerate(input_text):
        encoder_input_data[i, t, input_token_index[char]] = 1.0
    encoder_input_data[i, len(input_text):, input_token_index[" "]] = 1.0
    for t, char in enumerate(target_text):
        decoder_input_data[i, t, target_token_index[char]] = 1.0
        if t > 0:
            decoder_target_data[i, t - 1, target_token_index[char]] = 1.0
    decoder_input_data[i, len(target_text):, target_token_index["\\n"]] = 1.0
    decoder_target_data[i, len(target_text) - 1:, target_token_index["\\n"]] = 1.0

latent_dim = 64
encoder_inputs = keras.Input(shape=(None, num_encoder_tokens))
encoder = layers.LSTM(latent_dim, return_state=True)
encoder_outputs, state_h, state_c = encoder(encoder_inputs)
encoder_states = [state_h, state_c]
decoder_inputs = keras.Input(shape=(None, num_decoder_tokens))
decoder_lstm = layers.LSTM(latent_dim, return_sequences=True, return_state=True)
decoder_outputs, _, _ = decoder_lstm(decoder_inputs, initial_state=encoder_states)
decoder_dense = layers.Dense(num_decoder_tokens, activation="softmax")
decoder_outputs = decoder_dense(decoder_outputs)
model = keras.Model([encoder_inputs, decoder_inputs], decoder_outputs)
model.compile(
    optimizer=keras.optimizers.Adam(0.01), loss="categorical_crossentropy", metrics=["accuracy"]
)
history = model.fit(
    [encoder_input_data, decoder_input_data], decoder_target_data,
    batch_size=64, epochs=EPOCHS, validation_split=0.2, verbose=0,
)

# Inference: the encoder alone, and the decoder fed its own states one step at a time.
encoder_model = keras.Model(encoder_inputs, encoder_states)
decoder_state_input_h = keras.Input(shape=(latent_dim,))
decoder_state_input_c = keras.Input(shape=(latent_dim,))
decoder_states_inputs = [decoder_state_input_h, decoder_state_input_c]
decoder_outputs, state_h, state_c = decoder_lstm(
    decoder_inputs, initial_state=decoder_states_inputs
)
decoder_outputs = decoder_dense(decoder_outputs)
decoder_model = keras.Model(
    [decoder_inputs] + decoder_states_inputs, [decoder_outputs, state_h, state_c]
)
reverse_target_char_index = {i: c for c, i in target_token_index.items()}


def decode_sequence(input_seq):
    states_value = encoder_model.predict(input_seq, verbose=0)
    target_seq = np.zeros((1, 1, num_decoder_tokens))
    target_seq[0, 0, target_token_index["\\t"]] = 1.0
    decoded_sentence = ""
    while True:
        output_tokens, h, c = decoder_model.predict([target_seq] + states_value, verbose=0)
        sampled_char = reverse_target_char_index[int(np.argmax(output_tokens[0, -1, :]))]
        if sampled_char == "\\n" or len(decoded_sentence) > max_decoder_seq_length:
            break
        decoded_sentence += sampled_char
        target_seq = np.zeros((1, 1, num_decoder_tokens))
        target_seq[0, 0, target_token_index[sampled_char]] = 1.0
        states_value = [h, c]
    return decoded_sentence


held_out = range(len(pairs) - 40, len(pairs))  # the last of validation_split's rows
correct = sum(
    decode_sequence(encoder_input_data[i : i + 1]) == target_texts[i].strip() for i in held_out
)
result = {"val_accuracy": history.history["val_accuracy"][-1], "decoded": correct / len(held_out)}
"""

IMDB = """
import numpy as np
import keras
from keras import layers

# Reviews as token ids of varying length; a review is positive when its "good" tokens
# (ids 2..49) outnumber its "bad" ones (50..97); ids 98.. are neutral.
max_features = 200
maxlen = 40
rng = np.random.default_rng(1)


def reviews(n):
    xs, ys = [], []
    for _ in range(n):
        length = int(rng.integers(12, maxlen + 15))
        ids = rng.integers(98, max_features, length)
        good, bad = rng.integers(0, 6, 2)
        ids[rng.choice(length, good + bad, replace=False)] = np.concatenate(
            [rng.integers(2, 50, good), rng.integers(50, 98, bad)]
        )
        xs.append(list(ids))
        ys.append(int(good > bad))
    return xs, np.array(ys)


x_train, y_train = reviews(1500)
x_val, y_val = reviews(300)
x_train = keras.utils.pad_sequences(x_train, maxlen=maxlen)
x_val = keras.utils.pad_sequences(x_val, maxlen=maxlen)

inputs = keras.Input(shape=(None,), dtype="int32")
x = layers.Embedding(max_features, 32)(inputs)
x = layers.Bidirectional(layers.LSTM(32, return_sequences=True))(x)
x = layers.Bidirectional(layers.LSTM(32))(x)
outputs = layers.Dense(1, activation="sigmoid")(x)
model = keras.Model(inputs, outputs)
model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
history = model.fit(
    x_train, y_train, batch_size=32, epochs=EPOCHS, validation_data=(x_val, y_val), verbose=0
)
result = {"val_accuracy": history.history["val_accuracy"][-1]}
"""

TEXT_GENERATION = """
import numpy as np
import keras
from keras import layers

# A text with structure to learn: repeated phrases.
rng = np.random.default_rng(2)
phrases = ["the cat sat on the mat. ", "a dog ran in the fog. ", "we met at ten. "]
text = "".join(phrases[i] for i in rng.integers(0, 3, 300))
chars = sorted(set(text))
char_indices = {c: i for i, c in enumerate(chars)}
indices_char = {i: c for i, c in enumerate(chars)}

maxlen = 20
step = 3
sentences = [text[i : i + maxlen] for i in range(0, len(text) - maxlen, step)]
next_chars = [text[i + maxlen] for i in range(0, len(text) - maxlen, step)]
x = np.zeros((len(sentences), maxlen, len(chars)), dtype="bool")
y = np.zeros((len(sentences), len(chars)), dtype="bool")
for i, sentence in enumerate(sentences):
    for t, char in enumerate(sentence):
        x[i, t, char_indices[char]] = 1
    y[i, char_indices[next_chars[i]]] = 1

model = keras.Sequential(
    [
        keras.Input(shape=(maxlen, len(chars))),
        layers.LSTM(64),
        layers.Dense(len(chars), activation="softmax"),
    ]
)
optimizer = keras.optimizers.RMSprop(learning_rate=0.01)
model.compile(loss="categorical_crossentropy", optimizer=optimizer)
history = model.fit(x, y, batch_size=64, epochs=EPOCHS, verbose=0)


def sample(preds, temperature=1.0):
    preds = np.log(np.asarray(preds).astype("float64") + 1e-12) / temperature
    exp_preds = np.exp(preds)
    return int(np.argmax(rng.multinomial(1, exp_preds / np.sum(exp_preds), 1)))


generated = ""
sentence = text[:maxlen]
for _ in range(120):
    x_pred = np.zeros((1, maxlen, len(chars)))
    for t, char in enumerate(sentence):
        x_pred[0, t, char_indices[char]] = 1.0
    preds = model.predict(x_pred, verbose=0)[0]
    next_char = indices_char[sample(preds, 0.2)]
    sentence = sentence[1:] + next_char
    generated += next_char
words = [w.strip(".") for w in generated.split()[1:-1]]
known = set(w.strip(".") for w in text.split())
result = {
    "first_loss": history.history["loss"][0],
    "last_loss": history.history["loss"][-1],
    "known_words": sum(w in known for w in words) / max(len(words), 1),
}
"""

RNNKIT_IMPORTS = {
    "import keras\n": "import rnnkit.keras as keras\n",
    "from keras import layers\n": "from rnnkit.keras import layers\n",
}


def _with_rnnkit_imports(program: str) -> str:
    out = program
    for old, new in RNNKIT_IMPORTS.items():
        assert out.count(old) == 1, f"the program should import {old.strip()!r} once"
        out = out.replace(old, new)
    assert "keras" not in out.replace("rnnkit.keras", "").replace("keras.", "").replace(
        "as keras", ""
    ), "only the imports change"
    return out


def _run(program: str, epochs: int) -> dict:
    namespace: dict = {"EPOCHS": epochs}
    exec(compile(textwrap.dedent(program), "<keras program>", "exec"), namespace)
    return namespace["result"]


PROGRAMS = {
    # program, epochs, the check of what it learned (with the figures in the message)
    "lstm_seq2seq": (
        SEQ2SEQ,
        30,
        lambda r: r["val_accuracy"] > 0.9 and r["decoded"] >= 0.8,
    ),
    "imdb_bidirectional_lstm": (IMDB, 8, lambda r: r["val_accuracy"] > 0.8),
    "text_generation": (
        TEXT_GENERATION,
        12,
        lambda r: r["last_loss"] < 0.4 * r["first_loss"] and r["known_words"] > 0.8,
    ),
}


@pytest.mark.parametrize("name", list(PROGRAMS))
def test_a_keras_program_with_only_its_imports_changed_runs_and_learns(name):
    program, epochs, learned = PROGRAMS[name]
    result = _run(_with_rnnkit_imports(program), epochs)
    assert learned(result), f"{name} under rnnkit: {result}"


@pytest.mark.parametrize("name", ["imdb_bidirectional_lstm", "text_generation"])
def test_the_same_program_is_a_keras_program(name):
    """The unchanged program under Keras 3 (two of them: the seq2seq one takes Keras a
    minute of per-step predict calls), to the same check."""
    pytest.importorskip("keras")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    program, epochs, learned = PROGRAMS[name]
    result = _run(program, epochs)
    assert learned(result), f"{name} under Keras: {result}"
